"""Parsing one sitemap document: bytes in, page URLs and child sitemap URLs out.

Handles urlset and sitemapindex in any (or a wrong) namespace, Atom and RSS feeds used as
sitemaps, plain-text sitemaps, gzip, a UTF-8 BOM and CDATA. The XML parser never expands
entities, never loads a DTD and never touches the network or local files; broken XML is
recovered where libxml2 can, and decompression stops at a byte cap (gzip bombs).
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urljoin, urlsplit

from lxml import etree

from ..failures import PermanentError

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"

DocumentKind = Literal["urlset", "index", "feed", "text"]


class SitemapFormatError(PermanentError):
    """The document is not a sitemap factflow can read."""


@dataclass
class SitemapDocument:
    kind: DocumentKind
    urls: list[str] = field(default_factory=list)
    sitemaps: list[str] = field(default_factory=list)
    #: A urlset's <lastmod> per URL, as written (W3C datetime), where the sitemap gives one.
    lastmod: dict[str, str] = field(default_factory=dict)


#: What the XML parser may never do: expand entities, load a DTD, reach the network or a file.
_SAFE_PARSING = dict(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    recover=True,
    remove_comments=True,
    remove_pis=True,
)
#: Elements whose end gives a URL; everything else is read through and dropped.
_ENTRY_ELEMENTS = frozenset({"url", "sitemap", "entry", "item"})
_FEED_ROOTS = frozenset({"feed", "rss", "rdf"})
_FEED_SLICE = 256 * 1024


def gunzip_capped(data: bytes, max_bytes: int) -> bytes:
    decompressor = zlib.decompressobj(wbits=31)
    try:
        out = decompressor.decompress(data, max_bytes + 1)
    except zlib.error as error:
        raise SitemapFormatError(f"corrupt gzip data: {error}") from error
    if len(out) > max_bytes or decompressor.unconsumed_tail:
        raise SitemapFormatError(f"sitemap is larger than {max_bytes} bytes once decompressed")
    return out


def parse_sitemap(data: bytes, base_url: str, max_bytes: int = 50 * 1024 * 1024) -> SitemapDocument:
    if data[:2] == GZIP_MAGIC:
        data = gunzip_capped(data, max_bytes)
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM):]
    stripped = data.lstrip()
    if stripped.startswith(b"<"):
        return _parse_xml(stripped, base_url)
    return _parse_text(stripped, base_url)


def _absolute_http_url(candidate: str | None, base_url: str) -> str | None:
    if not candidate:
        return None
    candidate = candidate.strip()
    if candidate.startswith(("http://", "https://")) and "/." not in candidate:
        return candidate  # what nearly every sitemap holds, as urljoin would give it: 200,000 joins saved
    url = urljoin(base_url, candidate)
    return url if urlsplit(url).scheme in ("http", "https") else None


def _parse_text(data: bytes, base_url: str) -> SitemapDocument:
    text = data.decode("utf-8", errors="replace")
    urls = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(("http://", "https://")):
            urls.append(line)
    if not urls and text.strip():
        raise SitemapFormatError("neither XML nor a list of http(s) URLs")
    return SitemapDocument(kind="text", urls=urls)


def _local(element) -> str:
    tag = element.tag
    return _local_name(tag) if isinstance(tag, str) else ""


@functools.lru_cache(maxsize=256)
def _local_name(tag: str) -> str:
    """`{namespace}loc` -> `loc`: a sitemap has a handful of tags, each seen 100,000 times."""
    return etree.QName(tag).localname.lower()


def _child_text(element, name: str) -> str | None:
    for child in element:
        if _local(child) == name:
            return child.text
    return None


def _parse_xml(data: bytes, base_url: str) -> SitemapDocument:
    """Fed a slice at a time and read element by element, each entry dropped once its URL is
    taken: a 50 MB sitemap never becomes a whole tree (which cost ~5x the document in memory).
    What libxml2 recovers from broken XML is kept; an error ends the reading there."""
    parser = etree.XMLPullParser(events=("start", "end"), **_SAFE_PARSING)
    document: SitemapDocument | None = None
    error: etree.XMLSyntaxError | None = None
    try:
        for start in range(0, len(data), _FEED_SLICE):
            parser.feed(data[start : start + _FEED_SLICE])
            document = _collect(parser, base_url, document)
        parser.close()
    except etree.XMLSyntaxError as syntax_error:
        error = syntax_error
    document = _collect(parser, base_url, document)
    if document is None:
        raise SitemapFormatError(f"unreadable XML: {error or 'no root element'}")
    return document


def _collect(parser: etree.XMLPullParser, base_url: str, document: SitemapDocument | None) -> SitemapDocument | None:
    """Take the URLs out of the parser's pending events; the document once its root is known."""
    for event, element in parser.read_events():
        name = _local(element)
        if event == "start":
            if document is None:
                document = _document_for_root(name)
            continue
        if name not in _ENTRY_ELEMENTS or document is None:
            continue
        _take_url(document, name, element, base_url)
        element.clear()
        parent = element.getparent()
        while parent is not None and element.getprevious() is not None:
            del parent[0]  # entries already read
    return document


def _document_for_root(name: str) -> SitemapDocument:
    if name == "sitemapindex":
        return SitemapDocument(kind="index")
    if name == "urlset":
        return SitemapDocument(kind="urlset")
    if name in _FEED_ROOTS:
        return SitemapDocument(kind="feed")
    raise SitemapFormatError(f"unknown root element <{name}>")


def _take_url(document: SitemapDocument, name: str, element, base_url: str) -> None:
    if name == "url":
        url = _absolute_http_url(_child_text(element, "loc"), base_url)
        if url:
            document.urls.append(url)
            lastmod = (_child_text(element, "lastmod") or "").strip()
            if lastmod:
                document.lastmod[url] = lastmod[:64]
    elif name == "sitemap":
        # Some generators put the URL straight into <sitemap> without a <loc>.
        loc = _child_text(element, "loc")
        url = _absolute_http_url(loc if loc is not None else element.text, base_url)
        if url:
            document.sitemaps.append(url)
    elif name == "entry":
        url = _absolute_http_url(_atom_entry_link(element), base_url)
        if url:
            document.urls.append(url)
    elif name == "item":
        url = _absolute_http_url(_child_text(element, "link"), base_url)
        if url:
            document.urls.append(url)


def _atom_entry_link(entry) -> str | None:
    """An Atom entry's page: its first link whose rel is absent or 'alternate'."""
    for child in entry:
        if _local(child) == "link" and child.get("rel", "alternate") == "alternate":
            return child.get("href")
    return None
