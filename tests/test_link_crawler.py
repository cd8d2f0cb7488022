"""Discovery by links: a site without a sitemap crawled from a seed, each page fetched once.

URL normalisation and link extraction alone first; then whole executions of a linked site served
locally: scope, depth and page limits, spellings of one URL counted once, nofollow and meta robots,
a redirect to another host refused by the network policy, and each page's lineage parent the page
that linked it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter

import pytest
from e2e_harness import PROJECT_ROOT, as_json, rows, storage_of, wait_for

from factflow_assets.demo.server import Resource, SiteServer
from factflow_assets.fetching.page_links import page_links, robots_directives
from factflow_assets.urls import normal_url, page_key, same_page


def test_spellings_of_one_page_are_one_key():
    spellings = [
        "HTTPS://Docs.Example.com:443/guide/#install",
        "https://docs.example.com/guide?utm_source=feed&utm_medium=x",
        "https://docs.example.com./guide/index.html",
        "https://docs.example.com/guide",
    ]
    assert {page_key(url) for url in spellings} == {page_key("https://docs.example.com/guide/")}
    assert page_key("https://docs.example.com/guide?page=2") != page_key("https://docs.example.com/guide")
    assert page_key("http://docs.example.com/guide") != page_key("https://docs.example.com/guide")
    assert normal_url("https://docs.example.com:8443/a/#x") == "https://docs.example.com:8443/a/"  # fetched as linked
    assert normal_url("https://bücher.example/") == "https://xn--bcher-kva.example/"
    assert same_page("https://x.org/") == "https://x.org/"


def test_links_come_resolved_against_the_base_without_nofollow_or_other_schemes():
    html = b"""<html><head><base href="/docs/v2/"><link rel="canonical" href="intro.html"></head><body>
    <a href="intro.html#part">Intro</a> <a href="../v1/old.html">Old</a> <a href="intro.html">again</a>
    <a rel="nofollow noopener" href="login.html">Log in</a> <a href="mailto:a@b.c">mail</a>
    <a href="javascript:void(0)">js</a> <a href="https://other.example/x">away</a><area href="map.html">
    </body></html>"""
    found = page_links(html, "https://docs.example.com/docs/index.html")
    assert found.links == [
        "https://docs.example.com/docs/v2/intro.html",
        "https://docs.example.com/docs/v1/old.html",
        "https://other.example/x",
        "https://docs.example.com/docs/v2/map.html",
    ]
    assert found.canonical == "https://docs.example.com/docs/v2/intro.html"
    assert not found.nofollow and not found.noindex


def test_meta_robots_and_the_header_say_nofollow_and_noindex():
    page = b'<html><head><meta name="ROBOTS" content="noindex"></head><body><a href="a.html">a</a></body></html>'
    found = page_links(page, "https://x.org/")
    assert found.noindex and not found.nofollow and found.links == ["https://x.org/a.html"]
    found = page_links(b'<meta name="robots" content="none"><a href="a.html">a</a>', "https://x.org/")
    assert found.noindex and found.nofollow and found.links == []
    assert page_links(b'<a href="a.html">a</a>', "https://x.org/", "nofollow").links == []
    assert robots_directives("googlebot: noindex, nofollow") == {"nofollow"}  # the first part is another agent's


def linked(title: str, *hrefs: str, head: str = "") -> Resource:
    links = "".join(f'<li><a href="{href}">{href}</a></li>' for href in hrefs)
    text = " ".join(f"{title} explains its own subject in sentence {n}." for n in range(30))
    return Resource(f"<html><head><title>{title}</title>{head}</head><body><main><h1>{title}</h1><p>{text}</p><ul>{links}</ul></main></body></html>".encode())


CONCURRENCY = 4  # at most this many pages are in flight (and fetched again after a kill)
CRAWL = """\
version: 1
routes:
  - name: crawl
    concurrency: 4
    adapters:
      - type: link_crawler
        config:
          respect_robots: false
          max_depth: {max_depth}
          max_pages: {max_pages}
          exclude: ['/docs/private/']
          rate_limit: {{initial_rps: 50, max_rps: 100}}
      - type: web_content_storage
  - name: markdown
    input: {{route: crawl}}
    adapters:
      - type: html_to_markdown
        config: {{workers: 1}}
init_message:
  route: crawl
  payload: {{start_url: http://127.0.0.1:1/docs/}}
"""


def crawl_pipeline(folder, max_depth: int = 5, max_pages: int = 100) -> None:
    (folder / "crawl.yaml").write_text(CRAWL.format(max_depth=max_depth, max_pages=max_pages))


def docs_site() -> dict[str, Resource]:
    return {
        "/docs/": linked("Home", "guide.html", "api/", "guide.html?utm_source=nav#top", "/blog/news.html", "private/keys.html"),
        "/docs/guide.html": linked("Guide", "./", "install.html", "secret.html\" rel=\"nofollow"),
        "/docs/api/": linked("API", "index.html", "calls.html", "hidden.html", "https://elsewhere.example/docs/x.html"),
        "/docs/api/index.html": linked("API again", "calls.html"),
        "/docs/api/calls.html": linked("Calls", "deep/one.html", "moved.html"),
        "/docs/api/deep/one.html": linked("Deep", "two.html"),
        "/docs/api/deep/two.html": linked("Deeper"),
        "/docs/api/hidden.html": linked("Hidden", "found-through-hidden.html", head='<meta name="robots" content="noindex">'),
        "/docs/api/found-through-hidden.html": linked("Found"),
        "/docs/api/moved.html": Resource(b"", status=301, headers={"Location": "http://localhost:1/away.html"}),
        "/docs/install.html": linked("Install", "guide.html"),
        "/docs/secret.html": linked("Secret"),
        "/docs/private/keys.html": linked("Keys"),
        "/blog/news.html": linked("News"),
    }


@pytest.mark.slow
@pytest.mark.backends
def test_a_site_without_a_sitemap_is_crawled_by_its_links_once_each_within_scope(pipelines, env):
    db, _store = env
    crawl_pipeline(pipelines.folder)
    with SiteServer(docs_site()) as site:
        execution = as_json("execution", "start", "crawl", "--set", f"start_url={site.url('/docs/')}")
        requests = dict(site.requests)
    fetched = {path for path in requests if not path.startswith("/robots")}
    assert fetched == {
        "/docs/", "/docs/guide.html", "/docs/api/", "/docs/api/calls.html", "/docs/api/deep/one.html",
        "/docs/api/deep/two.html", "/docs/api/hidden.html", "/docs/api/found-through-hidden.html",
        "/docs/api/moved.html", "/docs/install.html",
    }  # out of prefix, excluded, nofollow, an index file of a folder fetched already: never asked
    assert all(count == 1 for count in requests.values()), requests  # each page once, however it was spelled

    crawled = {r["metadata"]["url"].split("/docs/", 1)[1]: r for r in rows(db, execution["id"], "link_crawler")}
    assert crawled["api/hidden.html"]["status"] == "skipped" and "noindex" in crawled["api/hidden.html"]["error_message"]
    assert crawled["api/moved.html"]["status"] == "failed" and "network policy" in crawled["api/moved.html"]["error_message"]
    # each page's lineage parent is the invocation of the page that linked it
    by_id = {r["id"]: r for r in crawled.values()}
    assert by_id[crawled["api/deep/two.html"]["parent_lineage_id"]]["metadata"]["url"].endswith("/docs/api/deep/one.html")
    assert by_id[crawled["api/found-through-hidden.html"]["parent_lineage_id"]]["metadata"]["url"].endswith("/docs/api/hidden.html")
    assert crawled[""]["parent_lineage_id"] is None  # the seed
    assert execution["status"] == "completed"
    markdown = rows(db, execution["id"], "html_to_markdown")
    assert len([r for r in markdown if r["status"] == "completed"]) == 8  # every page kept (not the noindex one, nor the refused)


@pytest.mark.slow
def test_depth_and_page_limits_stop_the_crawl(pipelines, env):
    db, _store = env
    with SiteServer(docs_site()) as site:
        crawl_pipeline(pipelines.folder, max_depth=1)
        shallow = as_json("execution", "start", "crawl", "--set", f"start_url={site.url('/docs/')}")
        crawl_pipeline(pipelines.folder, max_pages=3)
        few = as_json("execution", "start", "crawl", "--set", f"start_url={site.url('/docs/')}")
    paths = {r["metadata"]["url"].split("/docs/", 1)[1] for r in rows(db, shallow["id"], "link_crawler")}
    assert paths == {"", "guide.html", "api/"}  # the seed and what it links to
    assert len(rows(db, few["id"], "link_crawler")) == 3


def tree_site(pages: int = 40, fanout: int = 3) -> dict[str, Resource]:
    """/docs/p0.html links to p1..p3, p1 to p4..p6, ...: a tree of `pages` pages, each linking back home."""
    return {
        f"/docs/p{n}.html": linked(f"Page {n}", "p0.html", *(f"p{child}.html" for child in range(n * fanout + 1, min(n * fanout + fanout, pages - 1) + 1)))
        for n in range(pages)
    }


def crawled_midway(db, tag: str):
    def check() -> bool:
        record = db.executions.find_by_tag(tag)
        if record is None:
            return False
        statuses = [r["status"] for r in rows(db, record.id, "link_crawler")]
        return statuses.count("completed") >= 8 and "pending" in statuses

    return check


@pytest.mark.slow
def test_a_crawl_killed_midway_resumes_its_frontier_without_fetching_a_page_twice(pipelines, env):
    db, store = env
    crawl_pipeline(pipelines.folder)
    with SiteServer(tree_site(), latency=0.2) as site:
        start = site.url("/docs/p0.html")
        clean = as_json("execution", "start", "crawl", "--set", f"start_url={start}", "--tag", "clean")
        before = Counter(site.requests)
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "execution", "start", "crawl", "--set", f"start_url={start}", "--tag", "killed"],
            cwd=PROJECT_ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        try:
            wait_for(crawled_midway(db, "killed"), what="the crawl midway", process=process)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
        assert as_json("execution", "get", "killed")["status"] == "interrupted"
        resumed = as_json("execution", "resume", "killed")
        requests = Counter(site.requests) - before

    assert clean["status"] == resumed["status"] == "completed"
    assert storage_of(store, resumed["id"]) == storage_of(store, clean["id"])  # the same pages, the same keys and bytes
    assert set(requests) == set(before) and len(requests) == 40
    # a page the killed run finished is not asked again: only those in flight at the kill are
    assert sum(requests.values()) - len(requests) <= CONCURRENCY, requests
    done = [r for r in rows(db, resumed["id"], "link_crawler") if r["status"] == "completed" and not r["superseded"]]
    assert len(done) == 40 and len({r["message_id"] for r in done}) == 40


@pytest.mark.slow
def test_a_sitemap_seeds_the_crawl_and_links_find_the_rest(pipelines, env):
    db, _store = env
    (pipelines.folder / "seeded.yaml").write_text(
        "version: 1\nroutes:\n  - name: crawl\n    adapters:\n      - type: sitemap_parser\n"
        "      - type: link_crawler\n        config: {respect_robots: false, rate_limit: {initial_rps: 50, max_rps: 100}}\n"
        "init_message:\n  route: crawl\n  payload: {sitemap_url: http://127.0.0.1:1/sitemap.xml}\n"
    )
    sitemap = Resource(
        b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        b"<url><loc>{{base_url}}/docs/</loc></url><url><loc>{{base_url}}/docs/orphan.html</loc></url></urlset>",
        "application/xml",
    )
    with SiteServer({**docs_site(), "/sitemap.xml": sitemap, "/docs/orphan.html": linked("Orphan")}) as site:
        execution = as_json("execution", "start", "seeded", "--set", f"sitemap_url={site.url('/sitemap.xml')}")
    assert execution["status"] == "completed"
    (listing,) = rows(db, execution["id"], "sitemap_parser")
    crawled = {r["metadata"]["url"].split("/docs/", 1)[1]: r for r in rows(db, execution["id"], "link_crawler")}
    assert {"", "orphan.html", "guide.html", "api/deep/two.html"} <= set(crawled)  # listed, and found by links
    assert crawled["orphan.html"]["parent_lineage_id"] == crawled[""]["parent_lineage_id"] == listing["id"]
