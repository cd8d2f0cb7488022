"""Compressed bodies are decoded a piece at a time and never past the size cap.

httpx decodes a network chunk whole, so a few kilobytes of brotli or gzip could become gigabytes
before any cap saw them. Every fetch (pages, sitemaps, robots.txt) reads raw bytes and decodes them
through `CappedDecoder`; the last test measures a real fetch of a bomb in a fresh process.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import zlib

import brotli
import pytest

from factflow_assets.demo.server import Resource, SiteServer
from factflow_assets.fetching.body_decoding import ACCEPT_ENCODING, CappedDecoder, DecodedTooLarge, DecodeFailed

TEXT = b"<html><body>" + b"<p>The pump reads its settings once.</p>" * 2000 + b"</body></html>"


def _bomb(encoding: str, size: int) -> bytes:
    """`size` zero bytes, compressed a megabyte at a time (the bomb never exists decoded here)."""
    block = b"\0" * (1 << 20)
    if encoding == "br":
        compressor = brotli.Compressor(quality=1)
        return b"".join(compressor.process(block) for _ in range(size >> 20)) + compressor.finish()
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
    return b"".join(compressor.compress(block) for _ in range(size >> 20)) + compressor.flush()


def _decode_in_chunks(decoder: CappedDecoder, data: bytes, chunk: int = 4096) -> bytes:
    return b"".join(decoder.decode(data[i : i + chunk]) for i in range(0, len(data), chunk))


@pytest.mark.parametrize(
    "encoding, encoded",
    [
        ("gzip", gzip.compress(TEXT)),
        ("x-gzip", gzip.compress(TEXT)),
        ("deflate", zlib.compress(TEXT)),
        ("deflate", zlib.compress(TEXT)[2:-4]),  # raw deflate, as some servers send it
        ("br", brotli.compress(TEXT)),
        ("identity", TEXT),
        ("", TEXT),
        ("gzip, br", brotli.compress(gzip.compress(TEXT))),  # applied in order, undone from the last
        ("compress", TEXT),  # not one factflow asks for: passed through as httpx does
    ],
)
def test_every_encoding_decodes_to_the_body(encoding, encoded):
    assert _decode_in_chunks(CappedDecoder(encoding, len(TEXT)), encoded) == TEXT


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_a_bomb_stops_at_the_cap(encoding):
    bomb = _bomb(encoding, 64 << 20)
    assert len(bomb) < (1 << 20)
    decoder = CappedDecoder(encoding, 1 << 20)
    with pytest.raises(DecodedTooLarge):
        _decode_in_chunks(decoder, bomb, chunk=len(bomb))  # one chunk: the whole bomb at once
    assert decoder.size <= 1 << 20


def test_a_body_that_is_not_what_its_encoding_says_fails_clearly():
    with pytest.raises(DecodeFailed):
        CappedDecoder("gzip", 1000).decode(b"this is not gzip at all")
    with pytest.raises(DecodeFailed):
        CappedDecoder("br", 1000).decode(b"\xff\xff\xff this is not brotli")


def test_fetches_ask_only_for_what_they_can_decode():
    assert {coding.strip() for coding in ACCEPT_ENCODING.split(",")} == {"gzip", "deflate", "br"}


_FETCH = """
import asyncio, json, sys
from factflow_assets.fetching.http_fetch import FetchPolicy, fetch_once
from resources.http import new_http_client

async def main():
    async with new_http_client() as client:
        try:
            await fetch_once(client, sys.argv[1], FetchPolicy(max_bytes=10 << 20, retries=0))
            outcome = "fetched"
        except Exception as error:
            outcome = f"{type(error).__name__}: {error}"
    # VmHWM, not ru_maxrss: Linux carries a large parent's high-water mark into a child's ru_maxrss
    peak_kib = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    print(json.dumps({"outcome": outcome, "peak_mib": peak_kib / 1024}))

asyncio.run(main())
"""


@pytest.mark.slow
@pytest.mark.parametrize("encoding", ["br", "gzip"])
def test_fetching_a_bomb_page_fails_as_too_large_without_the_memory(encoding):
    """512 MiB of zeros as a few hundred kilobytes: the page fails as too large, and the process
    that fetched it peaks far below what the decoded body would take."""
    bomb = _bomb(encoding, 512 << 20)
    with SiteServer({"/bomb.html": Resource(bomb, headers={"Content-Encoding": encoding})}) as site:
        result = subprocess.run([sys.executable, "-c", _FETCH, site.url("/bomb.html")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["outcome"].startswith("ResponseTooLarge") and "cap of 10485760 bytes" in report["outcome"]
    assert report["peak_mib"] < 300, report  # decoded whole, it would take over 512 MiB
