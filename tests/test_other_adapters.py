"""`url_expander`, `web_content_storage`, and the adaptive rate limiter."""

import asyncio
import time

import pytest

from factflow_assets.adapters import Message, PermanentError, SkipMessage
from factflow_assets.extraction.documents import decode_html
from factflow_assets.fetching.rate_limit import AimdRateLimiter
from tests.adapter_harness import json_message, run_adapter


def test_url_expander_emits_one_message_per_unique_url_with_stable_identity():
    urls = ["http://x/a", "http://x/b", "http://x/a", "", 7]
    emits = run_adapter("url_expander", json_message({"urls": urls}))
    assert [e.body for e in emits] == [{"url": "http://x/a"}, {"url": "http://x/b"}]
    assert [e.identity for e in emits] == ["http://x/a", "http://x/b"]
    assert emits[0].slug == "a" and emits[0].metadata == {"url": "http://x/a"}
    dated = run_adapter("url_expander", json_message({"urls": ["http://x/a", "http://x/b"], "lastmod": {"http://x/b": "2026-11-02"}}))
    assert [e.metadata for e in dated] == [{"url": "http://x/a"}, {"url": "http://x/b", "lastmod": "2026-11-02"}]  # the sitemap's, for trust_lastmod
    assert len(run_adapter("url_expander", json_message({"links": urls}), {"field": "links", "max_urls": 1})) == 1
    with pytest.raises(PermanentError):
        run_adapter("url_expander", json_message({"urls": "not a list"}))


def html_message(body: bytes, content_type: str) -> Message:
    return Message("m1", body, content_type, {"url": "http://x/p", "status": 200, "fetched_at": "2024-01-01T00:00:00+00:00", "final_url": "http://x/p"})


def test_web_content_storage_keeps_html_as_utf8_with_title_and_language():
    page = "<html lang='fr'><head><title> Café \n crème </title></head><body>é</body></html>".encode("latin-1")
    (emit,) = run_adapter("web_content_storage", html_message(page, "text/html; charset=ISO-8859-1"))
    assert emit.content_type == "text/html; charset=utf-8"
    assert "Café" in emit.body and "é</body>" in emit.body
    meta = emit.metadata
    assert meta["title"] == "Café crème" and meta["language"] == "fr"
    assert meta["url"] == "http://x/p" and meta["status"] == 200 and meta["fetched_at"].startswith("2024")


def test_web_content_storage_uses_the_meta_charset_when_the_header_has_none():
    page = '<html><head><meta charset="windows-1252"><title>Price: 5\x80</title></head></html>'.encode("latin-1")
    assert "5€" in decode_html(page, "text/html")
    (emit,) = run_adapter("web_content_storage", html_message(page, "text/html"))
    assert emit.metadata["title"] == "Price: 5€"


def test_web_content_storage_finds_a_title_the_part_before_body_does_not_hold():
    """The title is read from the part before <body> first; a title elsewhere is still found."""
    in_body = b"<html lang='de'><head></head><body><title>Late title</title><p>x</p></body></html>"
    (emit,) = run_adapter("web_content_storage", html_message(in_body, "text/html"))
    assert emit.metadata["title"] == "Late title" and emit.metadata["language"] == "de"
    cut_early = b"<html><head><script>document.write('<body>')</script><title>Real title</title></head><body></body></html>"
    (emit,) = run_adapter("web_content_storage", html_message(cut_early, "text/html"))
    assert emit.metadata["title"] == "Real title"


def test_web_content_storage_keeps_documents_skips_other_types_and_survives_empty_pages():
    with pytest.raises(SkipMessage, match="image/png"):
        run_adapter("web_content_storage", html_message(b"\x89PNG", "image/png"))
    with pytest.raises(SkipMessage, match="application/pdf"):
        run_adapter("web_content_storage", html_message(b"%PDF-1.4", "application/pdf"), {"content_types": ["text/html"]})
    (emit,) = run_adapter("web_content_storage", html_message(b"%PDF-1.4 bytes", "application/pdf"))
    assert emit.body == b"%PDF-1.4 bytes" and emit.content_type == "application/pdf"
    (emit,) = run_adapter("web_content_storage", html_message("caf\xe9 notes".encode("latin-1"), "text/plain; charset=iso-8859-1"))
    assert emit.body == "café notes" and emit.content_type == "text/plain; charset=utf-8"
    (emit,) = run_adapter("web_content_storage", html_message(b"", "text/html"))
    assert emit.metadata["title"] is None


def test_aimd_grows_on_success_halves_on_throttle_within_bounds():
    limiter = AimdRateLimiter(initial_rps=4, min_rps=1, max_rps=6, increase=1, decrease=0.5)
    for _ in range(5):
        limiter.on_success("h")
    assert limiter.rate("h") == 6
    limiter.on_throttle("h")
    assert limiter.rate("h") == 3
    for _ in range(5):
        limiter.on_throttle("h")
    assert limiter.rate("h") == 1
    assert limiter.rate("other") == 4  # hosts are independent


def test_aimd_spaces_requests_to_a_host_by_its_rate():
    limiter = AimdRateLimiter(initial_rps=20, min_rps=1, max_rps=20, increase=0, decrease=0.5)

    async def five_requests():
        started = time.monotonic()
        await asyncio.gather(*(limiter.acquire("h") for _ in range(5)))
        return time.monotonic() - started

    assert asyncio.run(five_requests()) >= 4 / 20 * 0.9  # four intervals of 50 ms between five


def test_broken_encodings_and_binary_bodies_decode_with_replacement_never_an_error():
    """An unknown charset, bytes invalid in the declared one, or binary served as HTML: the text
    comes out with U+FFFD where bytes did not decode, and the adapters go on."""
    assert Message("m", "café".encode("latin-1"), "text/markdown; charset=no-such-charset").text() == "caf\ufffd"
    (emit,) = run_adapter("web_content_storage", html_message(b"<html><title>T\xff\xfe</title>" + bytes(range(256)), "text/html; charset=utf-8"))
    assert emit.metadata["title"].startswith("T") and "\ufffd" in emit.body
    (emit,) = run_adapter("web_content_storage", html_message("<title>Ünïcode</title>".encode(), "text/html; charset=x-unknown"))
    assert emit.metadata["title"] == "Ünïcode"
