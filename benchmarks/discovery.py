"""Discovery by links: does a link crawl find what a site links to, once each, at the sitemap's pace?

    .venv/bin/python benchmarks/discovery.py [--corpus ../shared/corpora/docs-dev] [--pages 1000] [--large 10000]

(1) Each site of docs-dev (real pages of four documentation sites, at their own paths) is served
    without a sitemap under `/<site>/`, and crawled by benchmarks/pipelines/crawl.yaml from its
    start page (`index.html`, else the page with most links) within `/<site>/`. What a crawl should
    find is computed here independently (the standard library's HTML parser, breadth first over
    the pages the corpus holds): the pages reachable by links. Printed: the share found (target
    ≥ 99 %, with each one missed and why), pages requested twice (target 0), and the crawl's pages
    per second against the sitemap path on the same site (benchmarks/pipelines/sitemap.yaml, a
    sitemap listing exactly the URLs the crawl requested, so both do the same fetches): target
    ≥ 0.9. The corpus holds a part of each site, so links to the rest answer 404 on both paths,
    and each site is small: its rate is mostly the run's fixed cost.
(2) Pace: a generated site of `--pages` linked pages (each links to the home page, the next page
    and ten children), to markdown and segments by crawl.yaml and by sitemap.yaml: crawl ÷ sitemap pages/s
    (target ≥ 0.9).
(3) Memory: the generated site crawled by benchmarks/pipelines/crawl_only.yaml at 1,000 pages and
    at `--large`: peak RSS of the process tree of each (target: flat, the frontier in the database).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
from collections import Counter, deque
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.corpora import CORPORA  # noqa: E402
from benchmarks.throughput import factflow, fresh_env  # noqa: E402
from factflow_assets.demo.server import Request, Resource, SiteServer  # noqa: E402

SITEMAP_TYPE = "application/xml"


class _Anchors(HTMLParser):
    """Every `<a href>` and `<base href>`, as written (the benchmark's own, independent reading)."""

    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []
        self.base: str | None = None

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if tag == "base" and values.get("href") and self.base is None:
            self.base = values["href"]
        if tag in ("a", "area") and values.get("href") and "nofollow" not in (values.get("rel") or "").lower():
            self.hrefs.append(values["href"])


def links_of(html: str, url: str) -> list[str]:
    parser = _Anchors()
    parser.feed(html)
    base = urljoin(url, parser.base) if parser.base else url
    found = []
    for href in parser.hrefs:
        parts = urlsplit(urljoin(base, href.strip()))
        if parts.scheme in ("http", "https"):
            found.append(parts._replace(fragment="", query="").geturl())
    return found


def load_site(corpus: Path, name: str) -> dict[str, bytes]:
    """{path under the site's folder: page bytes} of one docs-dev site."""
    pages = json.loads((corpus / "manifest.json").read_text())[name]["pages"]
    return {path: gzip.decompress((corpus / name / "html" / f"{path}.gz").read_bytes()) for path in pages}


def reachable(pages: dict[str, bytes], base_url: str, start: str) -> dict[str, str]:
    """{path: how it is reached (the page linking it)} of the corpus pages reachable from `start`
    within its folder (the crawl's default scope)."""
    scope = base_url + start[: start.rfind("/") + 1]
    found, queue = {start: "(start)"}, deque([start])
    while queue:
        path = queue.popleft()
        for link in links_of(pages[path].decode("utf-8", "replace"), base_url + path):
            if not link.startswith(scope):
                continue
            target = link[len(base_url):]
            target = target + "index.html" if target == "" or target.endswith("/") else target
            if target in pages and target not in found:
                found[target] = path
                queue.append(target)
    return found


def start_page(pages: dict[str, bytes], base_url: str) -> str:
    if "index.html" in pages:
        return "index.html"
    return max(pages, key=lambda path: (len(reachable(pages, base_url, path)), -len(path)))


def serve_site(name: str, pages: dict[str, bytes], requests: Counter, sitemap: list[str]) -> dict:
    """Routes serving a site under /<name>/ (a folder's index.html at the folder too), counting
    each request by path; `sitemap` (filled later) is served at /<name>-sitemap.xml."""

    def page(request: Request) -> Resource:
        path = urlsplit(request.path).path
        requests[path] += 1
        relative = path[len(name) + 2:]
        body = pages.get(relative) or pages.get(relative + "index.html") or pages.get(relative + "/index.html")
        return Resource(body) if body is not None else Resource(b"<html><body>not here</body></html>", status=404)

    def listing(request: Request) -> Resource:
        urls = "".join(f"<url><loc>{url}</loc></url>" for url in sitemap)
        return Resource(f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'.encode(), SITEMAP_TYPE)

    return {"page": page, "listing": listing}


class PrefixServer(SiteServer):
    """A SiteServer whose routes are chosen by prefix: every path under /<site>/ is one handler."""

    def __init__(self, handlers: dict[str, dict], latency: float = 0.0):
        super().__init__({}, latency)
        self.handlers = handlers

    def _answer(self, handler, posted=None):
        path = urlsplit(handler.path).path
        name = path.split("/")[1].removesuffix("-sitemap.xml")
        chosen = self.handlers.get(name)
        if chosen is not None:
            self.routes[handler.path] = chosen["listing"] if path.endswith("-sitemap.xml") else chosen["page"]
        return super()._answer(handler, posted)


def stored_pages(home: str, execution_id: str, stage: str) -> set[str]:
    import sqlite3
    from contextlib import closing

    query = "SELECT metadata FROM factflow_lineage WHERE execution_id = ? AND stage = ? AND status = 'completed' AND NOT superseded"
    with closing(sqlite3.connect(Path(home) / "factflow.db")) as db:
        return {json.loads(row[0])["url"] for row in db.execute(query, (execution_id, stage))}


def docs_sites(corpus: Path) -> None:
    names = list(json.loads((corpus / "manifest.json").read_text()))
    sites = {name: load_site(corpus, name) for name in names}
    requests: dict[str, Counter] = {name: Counter() for name in names}
    sitemaps: dict[str, list[str]] = {name: [] for name in names}
    handlers = {name: serve_site(name, sites[name], requests[name], sitemaps[name]) for name in names}
    print("(1) docs-dev sites without a sitemap: found / reachable (target ≥ 99 %), pages asked twice (0), crawl ÷ sitemap pages/s (≥ 0.9)")
    with tempfile.TemporaryDirectory() as home, PrefixServer(handlers) as server:
        env = fresh_env(home)
        for name in names:
            base_url = server.url(f"/{name}/")
            start = start_page(sites[name], base_url)
            should = reachable(sites[name], base_url, start)
            requests[name].clear()
            crawl_wall, crawl, _ = factflow(env, "execution", "start", "crawl", "--set", f"start_url={base_url}{start}")
            asked = Counter(requests[name])
            found = {url[len(base_url):] for url in stored_pages(home, crawl["execution_id"], "link_crawler")}
            found = {path + "index.html" if path == "" or path.endswith("/") else path for path in found}
            missed = sorted(set(should) - found)
            twice = {path: count for path, count in asked.items() if count > 1}
            sitemaps[name][:] = [server.url(path) for path in asked]
            requests[name].clear()
            map_wall, mapped, _ = factflow(env, "execution", "start", "sitemap", "--set", f"sitemap_url={server.url(f'/{name}-sitemap.xml')}")
            crawl_rate, map_rate = len(found) / crawl_wall, len(stored_pages(home, mapped["execution_id"], "web_scraper")) / map_wall
            print(
                f"    {name:10} {len(set(should) & found)}/{len(should)} reachable pages found "
                f"({100 * (len(should) - len(missed)) / len(should):.1f} %), {len(asked)} URLs asked ({sum(asked.values()) - len(asked)} twice), "
                f"crawl {crawl_rate:.1f} pages/s ({crawl_wall:.1f} s) vs sitemap {map_rate:.1f} ({map_wall:.1f} s): {crawl_rate / map_rate:.2f}"
            )
            for path in missed[:10]:
                print(f"        missed {path} (linked from {should[path]})")
            if twice:
                print(f"        asked twice: {sorted(twice)[:10]}")


def linked_site(pages: int) -> dict:
    """`pages` pages (page n links to the home page, the next page and its ten children 10n+1 ..
    10n+10: every page within a few links of the home page), and a sitemap of them."""
    filler = " ".join(f"Sentence {n} of a page in a large linked site, long enough to be a page." for n in range(40))

    def page(request: Request) -> Resource:
        number = int(urlsplit(request.path).path.rsplit("/p", 1)[1].split(".")[0])
        targets = [number + 1, *range(10 * number + 1, 10 * number + 11)]
        links = "".join(f'<a href="p{k}.html">page {k}</a> ' for k in targets if 0 < k < pages)
        body = f"<html><head><title>Page {number}</title></head><body><main><h1>Page {number}</h1><p>{filler} {number}</p><a href='p0.html'>home</a> {links}</main></body></html>"  # noqa: E501
        return Resource(body.encode())

    urls = "".join(f"<url><loc>{{{{base_url}}}}/large/p{n}.html</loc></url>" for n in range(pages))
    sitemap = Resource(f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'.encode(), SITEMAP_TYPE)
    return {"/sitemap.xml": sitemap, **{f"/large/p{n}.html": page for n in range(pages)}}


def pace(pages: int) -> None:
    print(f"(2) a generated site of {pages} linked pages, to markdown and segments: crawl ÷ sitemap pages/s (target ≥ 0.9)")
    with tempfile.TemporaryDirectory() as home, SiteServer(linked_site(pages)) as site:
        env = fresh_env(home)
        crawl_wall, crawl, _ = factflow(env, "execution", "start", "crawl", "--set", f"start_url={site.url('/large/p0.html')}")
        map_wall, mapped, _ = factflow(env, "execution", "start", "sitemap", "--set", f"sitemap_url={site.url('/sitemap.xml')}")
        crawled, listed = len(stored_pages(home, crawl["execution_id"], "link_crawler")), len(stored_pages(home, mapped["execution_id"], "web_scraper"))
        print(
            f"    crawl {crawled} pages in {crawl_wall:.1f} s ({crawled / crawl_wall:.1f} pages/s), sitemap {listed} in {map_wall:.1f} s "
            f"({listed / map_wall:.1f} pages/s): {crawled / crawl_wall / (listed / map_wall):.2f}"
        )


def memory(large: int) -> None:
    print("(3) peak RSS of a link crawl alone (process tree), from 1,000 pages to the large run (target: flat)")
    for pages in (1000, large):
        with tempfile.TemporaryDirectory() as home, SiteServer(linked_site(pages)) as site:
            wall, answer, peak = factflow(fresh_env(home), "execution", "start", "crawl_only", "--set", f"start_url={site.url('/large/p0.html')}")
            crawled = len(stored_pages(home, answer["execution_id"], "link_crawler"))
            print(f"    {pages:>6} pages: {crawled} crawled in {wall:.1f} s ({crawled / wall:.0f} pages/s), peak RSS {peak:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPORA / "docs-dev")
    parser.add_argument("--pages", type=int, default=1000, help="pages of the generated site the pace is measured on (0 skips it)")
    parser.add_argument("--large", type=int, default=10_000, help="pages of the memory run's site (0 skips it)")
    args = parser.parse_args()
    if args.corpus.is_dir():
        docs_sites(args.corpus)
    else:
        print(f"(1) skipped: no corpus at {args.corpus}")
    if args.pages:
        pace(args.pages)
    if args.large:
        memory(args.large)


if __name__ == "__main__":
    main()
