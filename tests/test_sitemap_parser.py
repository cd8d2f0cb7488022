"""`sitemap_parser` against the shared sitemap corpus served by a local site, and its guards."""

import gzip
import time

import pytest

from factflow_assets.demo.server import Resource
from factflow_assets.fetching.http_fetch import HttpStatusError, ResponseTooLarge
from factflow_assets.fetching.sitemap_documents import SitemapFormatError, parse_sitemap
from tests.adapter_harness import json_message, run_adapter
from tests.conftest import SITEMAP_CORPUS

# File -> (page URLs, child sitemaps) it lists. Counted by hand from the files.
CORPUS_COUNTS = {
    "sitemap.xml": (84, 0),
    "sitemap.xml.gz": (84, 0),
    "sitemap2.xml": (0, 2),  # an index; one <loc> is CDATA
    "sitemap-hreflang.xml": (3, 1),  # alternates are not extra pages
    "crawler-commons/atom.xml": (1, 0),
    "crawler-commons/do-not-visit.txt": (1, 0),
    "crawler-commons/sitemap-with-bom.txt": (2, 0),
    "crawler-commons/sitemap.badns.xml": (2, 0),  # wrong namespace, whitespace around <loc>
    "crawler-commons/sitemap.index.xml": (0, 15),  # URLs straight inside <sitemap>
    "crawler-commons/sitemap.ns.xml": (2, 0),  # prefixed namespace
    "crawler-commons/sitemap.txt": (2, 0),
    "crawler-commons/sitemap.txt.gz": (5, 0),
    "crawler-commons/xmlSitemap.gz": (5, 0),
}


def corpus_site(site):
    routes = {"/" + name: Resource((SITEMAP_CORPUS / name).read_bytes(), content_type="application/octet-stream") for name in CORPUS_COUNTS}
    return site(routes)


@pytest.mark.parametrize("name", sorted(CORPUS_COUNTS))
def test_parses_each_corpus_file_exactly(name):
    document = parse_sitemap((SITEMAP_CORPUS / name).read_bytes(), "http://www.example.com/")
    assert (len(document.urls), len(document.sitemaps)) == CORPUS_COUNTS[name]


def test_details_of_the_corpus_files():
    bom = parse_sitemap((SITEMAP_CORPUS / "crawler-commons/sitemap-with-bom.txt").read_bytes(), "http://x/")
    assert bom.urls[0] == "http://www.domain.com/page1.html"  # BOM gone
    badns = parse_sitemap((SITEMAP_CORPUS / "crawler-commons/sitemap.badns.xml").read_bytes(), "http://x/")
    assert badns.urls == ["http://www.example.com/1", "http://www.example.com/2"]
    index = parse_sitemap((SITEMAP_CORPUS / "sitemap2.xml").read_bytes(), "http://x/")
    assert index.kind == "index" and index.sitemaps[1] == "http://www.example.com/sitemap2.xml.gz"
    atom = parse_sitemap((SITEMAP_CORPUS / "crawler-commons/atom.xml").read_bytes(), "http://x/")
    assert atom.urls == ["http://example.org/2003/12/13/atom03"]
    entities = parse_sitemap((SITEMAP_CORPUS / "crawler-commons/sitemap.index.xml").read_bytes(), "http://x/")
    assert entities.sitemaps[0] == "https://example.com/sitemap.jss?portalCode=10260&lang=en"


# Served whole through the adapter: every file that lists pages. The indexes point at example.com
# children, which a test must never fetch; their parsing is checked above and by the nested
# index test below.
SERVED = sorted(name for name, (pages, children) in CORPUS_COUNTS.items() if pages and not children)


@pytest.mark.parametrize("name", SERVED)
def test_the_adapter_fetches_and_counts_corpus_files(site, name):
    server = corpus_site(site)
    (emit,) = run_adapter("sitemap_parser", json_message({"sitemap_url": server.url("/" + name)}))
    assert len(emit.body["urls"]) == CORPUS_COUNTS[name][0]
    assert emit.body["sitemaps"] == [server.url("/" + name)]
    assert emit.metadata["url_count"] == CORPUS_COUNTS[name][0]


def urlset(*paths):
    return ("<?xml version='1.0'?><urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>"
            + "".join(f"<url><loc>{{{{base_url}}}}{p}</loc></url>" for p in paths) + "</urlset>").encode()


def index(*paths):
    return ("<sitemapindex xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>"
            + "".join(f"<sitemap><loc>{{{{base_url}}}}{p}</loc></sitemap>" for p in paths) + "</sitemapindex>").encode()


def test_follows_nested_indexes_with_gzip_children(site):
    server = site({
        "/index.xml": Resource(index("/a.xml.gz", "/nested.xml")),
        "/a.xml.gz": Resource(urlset("/p1", "/p2"), gzip_body=True),
        "/nested.xml": Resource(index("/b.xml")),
        "/b.xml": Resource(urlset("/p2", "/p3")),
    })
    (emit,) = run_adapter("sitemap_parser", json_message({"sitemap_url": server.url("/index.xml")}))
    assert emit.body["urls"] == [server.url(p) for p in ("/p1", "/p2", "/p3")]  # p2 once
    assert len(emit.body["sitemaps"]) == 4 and emit.body["errors"] == []


def test_depth_limit_and_loop_guard(site):
    server = site({
        "/index.xml": Resource(index("/index.xml", "/level1.xml")),
        "/level1.xml": Resource(index("/level2.xml")),
        "/level2.xml": Resource(urlset("/deep")),
    })
    (emit,) = run_adapter("sitemap_parser", json_message({"sitemap_url": server.url("/index.xml")}), {"max_depth": 1})
    errors = {e["sitemap"]: e["error"] for e in emit.body["errors"]}
    assert "loop guard" in errors[server.url("/index.xml")]
    assert "max_depth" in errors[server.url("/level2.xml")]
    assert emit.body["urls"] == []
    assert server.requests["/index.xml"] == 1


def test_discovers_sitemaps_from_robots_txt_for_a_site_root_or_robots_url(site):
    server = site({
        "/robots.txt": Resource(b"User-agent: *\nDisallow:\nSitemap: {{base_url}}/s1.xml\nSitemap: {{base_url}}/s2.txt\n", content_type="text/plain"),
        "/s1.xml": Resource(urlset("/a")),
        "/s2.txt": Resource(b"{{base_url}}/b\n{{base_url}}/c\n", content_type="text/plain"),
    })
    for start in ("/", "/robots.txt"):
        (emit,) = run_adapter("sitemap_parser", json_message({"sitemap_url": server.url(start)}))
        assert emit.body["urls"] == [server.url(p) for p in ("/a", "/b", "/c")]


def test_a_site_root_without_robots_sitemaps_falls_back_to_sitemap_xml(site):
    server = site({"/sitemap.xml": Resource(urlset("/only"))})
    (emit,) = run_adapter("sitemap_parser", json_message({"url": server.url("/")}))
    assert emit.body["urls"] == [server.url("/only")]


def test_include_exclude_and_max_urls(site):
    server = site({"/s.xml": Resource(urlset("/docs/a", "/docs/b", "/blog/c", "/docs/private/d"))})
    message = json_message({"sitemap_url": server.url("/s.xml")})
    (emit,) = run_adapter("sitemap_parser", message, {"include": ["/docs/"], "exclude": ["/private/"]})
    assert emit.body["urls"] == [server.url("/docs/a"), server.url("/docs/b")]
    (emit,) = run_adapter("sitemap_parser", message, {"max_urls": 3})
    assert len(emit.body["urls"]) == 3 and emit.body["truncated"] is True


def test_a_failing_child_is_recorded_but_the_first_document_failing_fails(site):
    server = site({"/index.xml": Resource(index("/gone.xml", "/ok.xml")), "/ok.xml": Resource(urlset("/a"))})
    (emit,) = run_adapter("sitemap_parser", json_message({"sitemap_url": server.url("/index.xml")}), {"retries": 0})
    assert emit.body["urls"] == [server.url("/a")]
    assert "404" in emit.body["errors"][0]["error"]
    with pytest.raises(HttpStatusError, match="404"):
        run_adapter("sitemap_parser", json_message({"sitemap_url": server.url("/missing.xml")}), {"retries": 0})


def test_never_reads_local_files_or_expands_entities(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    xxe = f"""<?xml version="1.0"?>
<!DOCTYPE urlset [<!ENTITY xxe SYSTEM "file://{secret}">]>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>http://x/&xxe;</loc></url></urlset>""".encode()
    document = parse_sitemap(xxe, "http://x/")
    assert all("TOP-SECRET" not in url for url in document.urls)

    laughs = b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">' + b"".join(
        f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 if i > 1 else "")) * 10}">'.encode() for i in range(1, 10)
    ) + b']><urlset><url><loc>http://x/&lol9;</loc></url></urlset>'
    started = time.perf_counter()
    document = parse_sitemap(laughs, "http://x/")
    assert time.perf_counter() - started < 5  # a guard against hanging, not a speed claim
    assert all(len(url) < 1000 for url in document.urls)


def test_gzip_bombs_and_garbage_are_errors_not_crashes():
    bomb = gzip.compress(b"<urlset>" + b" " * (2 * 1024 * 1024) + b"</urlset>")
    with pytest.raises(SitemapFormatError, match="larger than"):
        parse_sitemap(bomb, "http://x/", max_bytes=1024 * 1024)
    with pytest.raises(SitemapFormatError):
        parse_sitemap(b"\x1f\x8bnot really gzip", "http://x/")
    with pytest.raises(SitemapFormatError):
        parse_sitemap(b"<html><body>a web page</body></html>", "http://x/")
    with pytest.raises(SitemapFormatError):
        parse_sitemap(b"just some words", "http://x/")


def big_urlset(count: int) -> bytes:
    """A urlset of `count` entries, ~128 bytes each, built in place (no peak above its size)."""
    document = bytearray(b"<?xml version='1.0'?><urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>")
    for i in range(count):
        document += b"<url><loc>https://example.com/articles/%08d/a-long-enough-slug-for-a-page.html</loc><lastmod>2024-01-01</lastmod></url>" % i
    return bytes(document + b"</urlset>")


def test_a_50000_url_sitemap_is_read_whole_in_bounded_time():
    started = time.perf_counter()
    document = parse_sitemap(big_urlset(50_000), "https://example.com/")
    assert time.perf_counter() - started < 30  # a guard against a quadratic read, not a speed claim
    assert len(document.urls) == 50_000 and document.urls[-1].endswith("/00049999/a-long-enough-slug-for-a-page.html")


MEMORY_PROBE = """
import resource, sys
sys.path.insert(0, {root!r})
from factflow_assets.fetching.sitemap_documents import parse_sitemap
document = bytearray(b"<urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>")
for i in range(410_000):
    document += b"<url><loc>https://example.com/articles/%08d/a-long-enough-slug-for-a-page.html</loc><lastmod>2024-01-01</lastmod></url>" % i
document = bytes(document + b"</urlset>")
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
urls = parse_sitemap(document, "https://example.com/").urls
print(len(document), len(urls), (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline) // 1024)
"""


@pytest.mark.slow
def test_a_50_mb_sitemap_is_parsed_without_building_its_tree():
    """Entries are read and dropped as they come: the parse adds little beyond the URL strings
    (a whole tree of this document cost ~230 MiB)."""
    import subprocess
    import sys
    from pathlib import Path

    probe = MEMORY_PROBE.format(root=str(Path(__file__).resolve().parents[1]))
    size, urls, grown_mib = map(int, subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split())
    assert size > 50_000_000 and urls == 410_000
    assert grown_mib < 120, grown_mib


def test_a_sitemap_over_the_byte_cap_fails_while_downloading(site):
    server = site({"/big.xml": Resource(big_urlset(20_000), content_type="application/xml")})
    with pytest.raises(ResponseTooLarge, match="exceeds the cap"):
        run_adapter("sitemap_parser", json_message({"sitemap_url": server.url("/big.xml")}), {"retries": 0, "max_bytes": 1024 * 1024})


def test_broken_xml_keeps_the_entries_before_the_break():
    truncated = b"<urlset><url><loc>http://x/a</loc></url><url><loc>http://x/b</loc></url><url><loc>http://x/c"
    assert parse_sitemap(truncated, "http://x/").urls[:2] == ["http://x/a", "http://x/b"]
    unclosed = b"<urlset><url><loc>http://x/a</loc><url><loc>http://x/b</loc></url></urlset>"  # a <url> never closed
    assert "http://x/b" in parse_sitemap(unclosed, "http://x/").urls
    with pytest.raises(SitemapFormatError, match="unreadable XML"):
        parse_sitemap(b"<<<>>>", "http://x/")


@pytest.mark.parametrize("content_type", ["text/html", "application/octet-stream", "image/png", ""])
def test_the_content_type_does_not_decide_a_sitemap_its_bytes_do(site, content_type):
    png = Resource(b"\x89PNG\r\n\x1a\n" + bytes(range(256)), content_type="application/xml")
    server = site({"/s": Resource(urlset("/a"), content_type=content_type), "/png": png})
    (emit,) = run_adapter("sitemap_parser", json_message({"sitemap_url": server.url("/s")}), {"retries": 0})
    assert emit.body["urls"] == [server.url("/a")]
    with pytest.raises(SitemapFormatError):
        run_adapter("sitemap_parser", json_message({"sitemap_url": server.url("/png")}), {"retries": 0})
