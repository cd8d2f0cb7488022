"""`web_scraper` against a local site: metadata, retries, Retry-After, caps, robots.txt."""

import time

import aiohttp
import pytest

from factflow_assets.adapters import SkipMessage
from factflow_assets.demo.server import Resource
from factflow_assets.fetching.http_fetch import (
    HttpStatusError,
    MalformedResponse,
    PageDeadline,
    ResponseTooLarge,
    Stalled,
    TooManyRedirects,
    UnfetchableUrl,
    retry_after_seconds,
)
from factflow_assets.fetching.robots import RobotsUnreachable
from tests.adapter_harness import json_message, run_adapter
from tests.conftest import html_page

FAST = {"backoff": 0.01, "rate_limit": {"initial_rps": 100, "max_rps": 200}}


def scrape(url, **config):
    return run_adapter("web_scraper", json_message({"url": url}), {**FAST, **config})


def test_fetches_a_page_and_records_status_type_final_url_and_timings(site):
    server = site({"/page": html_page("Hello"), "/old": Resource(status=301, headers={"Location": "/page"})})
    (emit,) = scrape(server.url("/old"))
    assert b"<title>Hello</title>" in emit.body
    assert emit.content_type == "text/html; charset=utf-8"
    meta = emit.metadata
    assert meta["url"] == server.url("/old") and meta["final_url"] == server.url("/page")
    assert meta["status"] == 200 and meta["redirects"] == 1 and meta["attempts"] == 1
    assert meta["elapsed_ms"] >= 0 and meta["ttfb_ms"] >= 0 and meta["fetched_at"]


def test_a_404_fails_at_once_without_retrying(site):
    server = site({})
    with pytest.raises(HttpStatusError, match="HTTP 404"):
        scrape(server.url("/missing"))
    assert server.requests["/missing"] == 1


def test_5xx_is_retried_with_backoff_then_fails(site):
    server = site({"/flaky": Resource(b"down", status=503)})
    with pytest.raises(HttpStatusError, match="HTTP 503"):
        scrape(server.url("/flaky"), retries=2)
    assert server.requests["/flaky"] == 3


def test_a_transient_500_recovers(site):
    def flaky(request):
        return Resource(b"oops", status=500) if request.count < 3 else html_page("Recovered")

    server = site({"/p": flaky})
    (emit,) = scrape(server.url("/p"), retries=3)
    assert emit.metadata["attempts"] == 3 and b"Recovered" in emit.body


def test_429_honours_retry_after(site):
    def throttled(request):
        if request.count == 1:
            return Resource(b"slow down", status=429, headers={"Retry-After": "1"})
        return html_page("OK")

    server = site({"/p": throttled})
    started = time.monotonic()
    (emit,) = scrape(server.url("/p"))
    assert time.monotonic() - started >= 1.0  # it waited as told
    assert emit.metadata["attempts"] == 2


def test_a_retry_after_beyond_the_limit_fails_instead_of_sleeping(site):
    server = site({"/p": Resource(b"", status=429, headers={"Retry-After": "3600"})})
    with pytest.raises(HttpStatusError, match="Retry-After"):
        scrape(server.url("/p"), max_retry_after=5)
    assert server.requests["/p"] == 1


def test_retry_after_parses_both_forms():
    import httpx

    assert retry_after_seconds(httpx.Headers({"Retry-After": "7"})) == 7
    assert retry_after_seconds(httpx.Headers({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0
    assert retry_after_seconds(httpx.Headers({"Retry-After": "soon"})) is None
    assert retry_after_seconds(httpx.Headers()) is None


def test_redirects_are_capped(site):
    server = site({"/loop": Resource(status=302, headers={"Location": "/loop"})})
    with pytest.raises(TooManyRedirects):
        scrape(server.url("/loop"), max_redirects=3)
    assert server.requests["/loop"] == 4


@pytest.mark.parametrize("location", ["ftp://files.example/page", "javascript:alert(1)", "http://[::1"])
def test_a_redirect_no_request_can_follow_fails_at_once_naming_it(site, location):
    server = site({"/away": Resource(status=302, headers={"Location": location})})
    with pytest.raises(UnfetchableUrl, match="cannot fetch"):
        scrape(server.url("/away"), retries=3)
    assert server.requests["/away"] == 1  # not retried: asking again changes nothing


def test_long_header_lines_are_read(site):
    """Servers send Set-Cookie, Link or Content-Security-Policy lines longer than aiohttp's 8 KB default."""
    link = "<https://cdn.example/a.css>; rel=preload, " * 600  # 24 KB
    server = site({"/p": Resource(b"<html><title>Long</title></html>", content_type="text/html", headers={"Link": link})})
    (emit,) = scrape(server.url("/p"))
    assert emit.metadata["status"] == 200 and b"Long" in emit.body


def test_bodies_over_the_cap_are_refused(site):
    big = Resource(b"x" * 200_000)
    streamed = Resource(chunks=[(b"y" * 50_000, 0)] * 5)  # no Content-Length
    server = site({"/big": big, "/streamed": streamed})
    for path in ("/big", "/streamed"):
        with pytest.raises(ResponseTooLarge):
            scrape(server.url(path), max_bytes=100_000)


def test_a_timeout_is_retried(site):
    def slow_once(request):
        return html_page("late", "<p>slow</p>") if request.count > 1 else Resource(b"x", delay=1.5)

    server = site({"/p": slow_once})
    (emit,) = scrape(server.url("/p"), timeout=0.5, retries=1)
    assert emit.metadata["attempts"] == 2 and server.requests["/p"] == 2


def test_a_trickling_server_hits_the_total_timeout(site):
    server = site({"/slow": Resource(chunks=[(b"a", 0.3)] * 20)})
    started = time.monotonic()
    with pytest.raises(TimeoutError):  # asyncio.timeout's, over the whole request
        scrape(server.url("/slow"), timeout=1, total_timeout=1, retries=0)
    assert time.monotonic() - started < 5  # the trickle would have lasted 6 s


def test_robots_txt_disallow_skips_and_crawl_delay_paces(site):
    server = site({
        "/robots.txt": Resource(b"User-agent: *\nDisallow: /private/\nCrawl-delay: 0.5\n", content_type="text/plain"),
        "/private/p": html_page("secret"),
        "/a": html_page("a"),
        "/b": html_page("b"),
    })
    outcomes = run_adapter(
        "web_scraper", None, FAST,
        messages=[json_message({"url": server.url(p)}) for p in ("/private/p", "/a", "/b")],
    )
    assert isinstance(outcomes[0], SkipMessage) and "robots.txt" in str(outcomes[0])
    assert server.requests["/private/p"] == 0 and server.requests["/robots.txt"] == 1
    assert outcomes[1][0].metadata["status"] == 200 and outcomes[2][0].metadata["status"] == 200


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
def test_a_robots_txt_over_the_cap_is_read_as_far_as_the_cap(site, encoding):
    """RFC 9309: a crawler parses at least the first 500 KiB. A 700 KiB robots.txt whose first
    group disallows everything still disallows everything (it was ignored whole)."""
    import gzip

    text = b"User-agent: *\nDisallow: /\n" + b"".join(b"# padding line %06d of a very long robots.txt\n" % i for i in range(16000))
    assert len(text) > 700 * 1024
    body, headers = (gzip.compress(text), {"Content-Encoding": "gzip"}) if encoding == "gzip" else (text, {})
    server = site({"/robots.txt": Resource(body, content_type="text/plain", headers=headers), "/a": html_page("a")})
    outcomes = run_adapter("web_scraper", None, FAST, messages=[json_message({"url": server.url("/a")})])
    assert isinstance(outcomes[0], SkipMessage) and "robots.txt" in str(outcomes[0])
    assert server.requests["/a"] == 0


def test_a_robots_txt_redirect_loop_counts_as_unavailable_and_allows(site):
    server = site({"/robots.txt": Resource(status=302, headers={"Location": "/robots.txt"}), "/a": html_page("a")})
    (emit,) = scrape(server.url("/a"))
    assert emit.metadata["status"] == 200


def test_an_erroring_robots_txt_fails_every_page_with_its_cause(site):
    server = site({"/robots.txt": Resource(b"", status=500), "/a": html_page("a")})
    with pytest.raises(RobotsUnreachable, match=r"robots.txt of http://127.0.0.1:\d+ could not be fetched \(HTTP 500"):
        scrape(server.url("/a"))
    assert server.requests["/a"] == 0


def test_an_unreachable_robots_txt_fails_pages_naming_the_connection_error(site):
    server = site({"/a": html_page("a")})
    url = server.url("/a")
    server.stop()  # nothing listens there any more: robots.txt cannot be fetched
    outcomes = run_adapter("web_scraper", None, FAST, messages=[json_message({"url": url}), json_message({"url": url + "?2"})])
    assert all(isinstance(outcome, RobotsUnreachable) for outcome in outcomes)
    assert all("ClientConnectorError" in str(outcome) and "could not be fetched" in str(outcome) for outcome in outcomes)
    assert not isinstance(outcomes[0], SkipMessage)


def test_robots_can_be_ignored_when_configured(site):
    server = site({"/robots.txt": Resource(b"User-agent: *\nDisallow: /\n", content_type="text/plain"), "/a": html_page("a")})
    (emit,) = scrape(server.url("/a"), respect_robots=False)
    assert emit.metadata["status"] == 200 and server.requests["/robots.txt"] == 0


def test_a_body_trickling_below_the_minimum_rate_is_given_up_naming_the_stall(site):
    server = site({"/drip": Resource(chunks=[(b"a", 0.05)] * 200)})  # ~20 B/s for 10 s
    started = time.monotonic()
    with pytest.raises(Stalled, match=r"stalled: \d+ B/s for 1 s \(the minimum is 1000 B/s\)"):
        scrape(server.url("/drip"), min_rate=1000, rate_window=0.5, retries=2)
    assert time.monotonic() - started < 5 and server.requests["/drip"] == 1  # not retried, not waited out


def test_one_deadline_covers_every_attempt_at_a_page(site):
    server = site({"/busy": Resource(b"busy", status=503, delay=0.3)})
    started = time.monotonic()
    with pytest.raises(PageDeadline, match=r"within its 1 s deadline \(\d+ attempt\(s\); last: HTTP 503"):
        scrape(server.url("/busy"), deadline=1, retries=50, backoff=0.1)
    assert time.monotonic() - started < 5  # fifty retries would have taken far longer


@pytest.mark.parametrize(
    ("lastmod", "trusted"),
    [
        ("2020-03-04", True), ("2020-03-04T10:20:30Z", True), ("2020-03-04T10:20+02:00", True), ("2020-03-04T10:20:30.5", True),
        ("0001-01-01", False), ("1970-01-01T00:00:00Z", False), ("2026-W05", False), ("20260101", False), ("2026", False),
        ("2026-05", False), ("9999-12-31", False), ("yesterday", False), ("", False), (None, False),
    ],
)
def test_trust_lastmod_reads_only_real_w3c_dates(lastmod, trusted):
    """A placeholder or a form sitemaps do not use is no lastmod: the page is asked for, not
    taken as unchanged for good."""
    from factflow_assets.adapters.base import Message, Unchanged
    from factflow_assets.adapters.web_scraper import unchanged_by_lastmod

    message = Message("m", b"{}", "application/json", {"lastmod": lastmod}, baseline={"fetched_at": "2025-01-01T00:00:00+00:00"})
    if trusted:
        with pytest.raises(Unchanged):
            unchanged_by_lastmod(message)
    else:
        unchanged_by_lastmod(message)  # no opinion: the page is fetched


def test_a_fetch_after_the_first_imports_nothing(site):
    """A page's fetch is CPU on the stage's event loop: nothing in it may look a module up (httpx's
    transport did, several times a request, when sniffio was missing: a quarter of its CPU)."""
    import asyncio
    import sys

    from factflow_assets.fetching.http_fetch import FetchPolicy, fetch
    from resources.http import new_http_client

    server = site({"/p": html_page("Hello")})
    looked_up: list[str] = []

    class Recorder:
        @staticmethod
        def find_spec(name, path=None, target=None):
            looked_up.append(name)
            return None

    async def two_fetches() -> None:
        async with new_http_client() as client:
            await fetch(client, server.url("/p"), FetchPolicy())
            sys.meta_path.insert(0, Recorder)
            try:
                await fetch(client, server.url("/p"), FetchPolicy())
            finally:
                sys.meta_path.remove(Recorder)

    asyncio.run(two_fetches())
    assert looked_up == []


def test_the_proxy_the_environment_names_is_used_unless_no_proxy_exempts_the_host(site, monkeypatch):
    import socket

    from yarl import URL

    from resources.http import proxy_for

    with socket.socket() as probe:  # a port nothing listens on: a request sent to it fails
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed}")
    monkeypatch.setenv("HTTPS_PROXY", "http://secure-proxy.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert proxy_for(URL("https://docs.example/a")) == "http://secure-proxy.example:3128"
    server = site({"/p": html_page("Through")})
    with pytest.raises(aiohttp.ClientError, match=str(closed)):
        scrape(server.url("/p"), retries=0, respect_robots=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert proxy_for(URL(server.url("/p"))) is None
    (emit,) = scrape(server.url("/p"), respect_robots=False)
    assert b"Through" in emit.body


def test_an_answer_that_is_not_valid_http_fails_at_once_saying_so(site):
    """aiohttp's parser refuses Content-Length beside Transfer-Encoding (how responses are smuggled);
    the row must not say "400", which the server never sent."""
    server = site({"/p": Resource(b"<html><title>x</title></html>", headers={"Transfer-Encoding": "chunked"})})
    with pytest.raises(MalformedResponse, match="not valid HTTP: .*Transfer-Encoding") as raised:
        scrape(server.url("/p"), retries=3, respect_robots=False)
    assert "400" not in str(raised.value).replace(server.url("/p"), "<url>")  # the port may hold "400"
    assert server.requests["/p"] == 1
