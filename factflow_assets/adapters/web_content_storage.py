"""`web_content_storage`: the canonical stored page, as UTF-8 HTML with its title and language.

Takes what `web_scraper` fetched, keeps HTML (anything else is skipped with the reason), decodes
it with the charset the server or the page declares, and emits it with url, status, title,
language and fetched-at in the sidecar.
"""

from __future__ import annotations

import re

import lxml.etree
import lxml.html
from pydantic import Field

from .base import Adapter, AdapterConfig, Emit, Message, SkipMessage, charset_of

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_BODY_START = re.compile(r"<body[\s>]", re.IGNORECASE)


class WebContentStorageConfig(AdapterConfig):
    content_types: list[str] = Field(
        default_factory=lambda: ["text/html", "application/xhtml+xml"],
        description="Media types kept; other pages are skipped.",
    )


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


class WebContentStorage(Adapter[WebContentStorageConfig]):
    type = "web_content_storage"
    config_model = WebContentStorageConfig

    async def process(self, message: Message) -> list[Emit]:
        media_type = message.content_type.split(";")[0].strip().lower()
        if media_type not in self.config.content_types:
            raise SkipMessage(f"not HTML: {media_type or 'no content type'}")
        html = decode_html(message.body, message.content_type)
        title, language = _title_and_language(html)
        source = message.metadata
        return [
            Emit(
                body=html,
                content_type="text/html; charset=utf-8",
                metadata={
                    "url": source.get("url"),
                    "final_url": source.get("final_url"),
                    "status": source.get("status"),
                    "fetched_at": source.get("fetched_at"),
                    "title": title,
                    "language": language,
                },
            )
        ]


def _title_and_language(html: str) -> tuple[str | None, str | None]:
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
