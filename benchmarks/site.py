"""A local website of realistic article pages for the throughput benchmarks, served on loopback.

    .venv/bin/python benchmarks/site.py [--pages 1000] [--latency 0.05]

The pages are the 97 real articles of ../shared/corpora/aeb-dev (MIT; median 105 KB, mean 184 KB),
served in turn as /articles/00000.html, /articles/00001.html, ...: page i is article i mod 97 with
its number written into the title and the first heading, so every page is its own document.
A sitemap index lists sitemaps of 500 URLs each; robots.txt allows everything. Bodies are made
per request from the 97 articles, so 10,000 pages cost no more memory than 100.

`--rendered` serves every page as a single-page app would: the article's <head>, a body reading
"Loading…" and a script that fetches the article's body from `<page>.json` and writes it in.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import time
from pathlib import Path

import lxml.html

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.corpora import AEB_DEV, CORPORA  # noqa: E402
from factflow_assets.demo.server import Request, Resource, SiteServer  # noqa: E402
from factflow_assets.extraction.documents import decode_html  # noqa: E402

CORPUS = AEB_DEV / "html"
DOCS_CORPUS = CORPORA / "docs-dev"
URLS_PER_SITEMAP = 500
SITEMAP_TYPE = "application/xml"


def load_articles(corpus: Path = CORPUS) -> list[bytes]:
    files = sorted(corpus.glob("*.html.gz"))
    if not files:
        raise SystemExit(f"no articles under {corpus}: the aeb-dev corpus is expected at ../shared/corpora/aeb-dev")
    return [gzip.decompress(f.read_bytes()) for f in files]


def load_docs_pages(corpus: Path = DOCS_CORPUS) -> list[bytes]:
    """The 146 pages of ../shared/corpora/docs-dev (four documentation sites, four generators), to
    serve in turn like the articles: a documentation site's pages instead of news articles."""
    files = sorted(corpus.rglob("*.html.gz"))
    if not files:
        raise SystemExit(f"no pages under {corpus}: the docs-dev corpus is expected at ../shared/corpora/docs-dev")
    return [gzip.decompress(f.read_bytes()) for f in files]


def page_path(index: int) -> str:
    return f"/articles/{index:05d}.html"


def _numbered(article: bytes, index: int) -> bytes:
    """The article with its page number in <title> and the first <h1>: a document of its own."""
    marker = f" (page {index})".encode()
    article = re.sub(rb"(<title[^>]*>)(.*?)(</title>)", lambda m: m[1] + m[2] + marker + m[3], article, count=1, flags=re.S | re.I)
    return re.sub(rb"(<h1[^>]*>)", lambda m: m[1] + f"Page {index}: ".encode(), article, count=1, flags=re.I)


#: What a single-page app's shell does: fetch the content, write it into the page (by absolute URL:
#: some pages carry a <base href> of their original site).
_LOADER = '<div id="app">Loading…</div><script>fetch(location.origin + location.pathname + ".json").then(r => r.json()).then(d => { document.body.innerHTML = d.body; });</script>'  # noqa: E501


def script_rendered(page: bytes) -> tuple[bytes, bytes]:
    """`page` as a script-rendered shell (UTF-8 HTML) and the JSON its script fetches.

    Split by a parser, not a pattern: a "<body>" inside a script of the head, or an IE
    conditional comment holding another <body>, is not where the body is."""
    document = lxml.html.document_fromstring(decode_html(page, "text/html"))
    body = document.find("body")
    if body is None:
        body = lxml.html.Element("body")
        document.append(body)
    inner = (body.text or "") + "".join(lxml.html.tostring(child, encoding="unicode") for child in body)
    for child in list(body):
        body.remove(child)
    body.text = None
    body.extend(lxml.html.fragments_fromstring(_LOADER))
    shell = "<!DOCTYPE html>\n" + lxml.html.tostring(document, encoding="unicode")
    return shell.encode("utf-8"), json.dumps({"body": inner}).encode("utf-8")


def benchmark_site(
    pages: int, latency: float = 0.0, articles: list[bytes] | None = None, rendered: bool = False, etags: bool = False, changed: set[int] | None = None
) -> SiteServer:
    """The site, not yet started (`with benchmark_site(1000) as site: site.url("/sitemap_index.xml")`);
    `rendered`: each page a script-rendered shell; `etags`: pages carry an ETag and answer 304 to a
    request naming it; `changed` (a set the caller may fill later): pages edited since the start.
    `site.served_bytes[0]` counts the body bytes of the pages served."""
    articles = articles or load_articles()
    changed = changed if changed is not None else set()
    served_bytes = [0]

    def page(request: Request) -> Resource:
        index = int(request.path.rsplit("/", 1)[1].split(".")[0])
        article = _numbered(articles[index % len(articles)], index)
        if index in changed:
            article = re.sub(rb"(<title[^>]*>)", rb"\1(updated) ", article, count=1, flags=re.I)
        if etags:
            etag = f'"{index}-{int(index in changed)}"'
            if request.headers.get("If-None-Match") == etag:
                return Resource(b"", status=304, headers={"ETag": etag})
            served_bytes[0] += len(article)
            return Resource(article, headers={"ETag": etag})
        served_bytes[0] += len(article)
        if not rendered:
            return Resource(article)
        shell, payload = script_rendered(article)
        return Resource(payload, "application/json") if request.path.endswith(".json") else Resource(shell)

    routes: dict = {page_path(i): page for i in range(pages)}
    if rendered:
        routes.update({page_path(i) + ".json": page for i in range(pages)})
    sitemaps = [range(start, min(start + URLS_PER_SITEMAP, pages)) for start in range(0, pages, URLS_PER_SITEMAP)]
    for number, indexes in enumerate(sitemaps):
        urls = "".join(f"<url><loc>{{{{base_url}}}}{page_path(i)}</loc></url>" for i in indexes)
        routes[f"/sitemaps/{number}.xml"] = Resource(
            f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'.encode(),
            SITEMAP_TYPE,
        )
    listed = "".join(f"<sitemap><loc>{{{{base_url}}}}/sitemaps/{n}.xml</loc></sitemap>" for n in range(len(sitemaps)))
    routes["/sitemap_index.xml"] = Resource(
        f'<?xml version="1.0" encoding="UTF-8"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{listed}</sitemapindex>'.encode(),
        SITEMAP_TYPE,
    )
    routes["/robots.txt"] = Resource(b"User-agent: *\nAllow: /\n", "text/plain")
    site = SiteServer(routes, latency=latency)
    site.served_bytes = served_bytes
    return site


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--rendered", action="store_true", help="serve each page as a script-rendered shell")
    args = parser.parse_args()
    with benchmark_site(args.pages, args.latency, rendered=args.rendered) as site:
        print(f"{args.pages} pages; sitemap {site.url('/sitemap_index.xml')} (Ctrl+C stops)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
