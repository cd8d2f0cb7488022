"""What several adapters know about the documents they pass along: how HTML is decoded, where a
page's title and language are, the markdown media type. One place, so no adapter borrows another's.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin

import lxml.etree
import lxml.html

MARKDOWN_CONTENT_TYPE = "text/markdown; charset=utf-8; variant=GFM"

_CANONICAL_LINK = re.compile(r"<link\b[^>]*\brel\s*=\s*[\"']?canonical[\"']?[^>]*>", re.IGNORECASE)
_HREF = re.compile(r"\bhref\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>]+))", re.IGNORECASE)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_BODY_START = re.compile(r"<body[\s>]", re.IGNORECASE)


def declared_charset(body: bytes, content_type: str) -> str:
    """The charset the HTTP header names, else the page's <meta>, else UTF-8."""
    if "charset=" in content_type.lower():
        return charset_of(content_type)
    found = _META_CHARSET.search(body[:4096])
    return found.group(1).decode("ascii") if found else "utf-8"


def decode_html(body: bytes, content_type: str) -> str:
    charset = declared_charset(body, content_type)
    try:
        return body.decode(charset, errors="replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", errors="replace")


def page_title_and_language(html: str) -> tuple[str | None, str | None]:
    """Read from the part before <body> (a quarter of the parse time of a whole article page);
    a page whose title is not there (none, or a <title> in the body) is parsed whole."""
    body_start = _BODY_START.search(html)
    if body_start is not None:
        title, language = _parse_title_and_language(html[: body_start.start()])
        if title is not None:
            return title, language
    return _parse_title_and_language(html)


def _parse_title_and_language(html: str) -> tuple[str | None, str | None]:
    # lxml refuses str input that carries an XML encoding declaration; bytes are fine.
    try:
        document = lxml.html.document_fromstring(html.encode("utf-8"), parser=_UTF8_PARSER)
    except lxml.etree.ParserError:  # an empty or comment-only document
        return None, None
    return title_and_language(document)


def title_and_language(document: lxml.html.HtmlElement) -> tuple[str | None, str | None]:
    """A parsed page's <title> (whitespace collapsed) and its root's lang or xml:lang."""
    title = document.findtext(".//title")
    language = document.get("lang") or document.get("{http://www.w3.org/XML/1998/namespace}lang")
    return (" ".join(title.split()) or None) if title else None, language


_UTF8_PARSER = lxml.html.HTMLParser(encoding="utf-8")


def canonical_url(html: str, base_url: str | None) -> str | None:
    """The page's `<link rel=canonical>`, resolved against its URL; None when it names none."""
    body_start = _BODY_START.search(html)
    head = html[: body_start.start()] if body_start else html[:65536]
    link = _CANONICAL_LINK.search(head)
    if link is None:
        return None
    href = _HREF.search(link.group(0))
    value = next((group for group in href.groups() if group), "").strip() if href else ""
    if not value:
        return None
    if not base_url:
        return value
    try:
        return urljoin(base_url, value)
    except ValueError:
        return None


def decode_text(body: bytes, content_type: str) -> str:
    """`body` as text in the charset `content_type` declares (UTF-8 when the charset is unknown to
    Python); undecodable bytes become U+FFFD rather than an error."""
    try:
        return body.decode(charset_of(content_type), errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


def charset_of(content_type: str) -> str:
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset" and value:
            return value.strip("\"'")
    return "utf-8"
