"""What a fetched HTML page tells a link crawl: the links it may follow, and what its robots say.

Links are taken from `<a href>` and `<area href>`, resolved against the page's `<base href>` (else
its final URL), kept when http(s), normalised (`urls.normal_url`), in page order, once each. A
link marked `rel=nofollow` is left out; `<meta name=robots>` and the `X-Robots-Tag` header say
`nofollow` (follow none of its links), `noindex` (do not keep the page) or `none` (both). The
page's `<link rel=canonical>` is reported too, for its sidecar.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from lxml import etree

from ..urls import normal_url

_PARSER = etree.HTMLParser(remove_comments=True, remove_pis=True, recover=True, no_network=True)
_HTML_TYPES = ("text/html", "application/xhtml+xml")


@dataclass
class PageLinks:
    links: list[str] = field(default_factory=list)
    nofollow: bool = False
    noindex: bool = False
    canonical: str | None = None


def is_html(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() in _HTML_TYPES


def robots_directives(text: str | None) -> set[str]:
    """`noindex, nofollow` (a meta tag's content or an X-Robots-Tag value; a header may name an
    agent first, `googlebot: noindex`, which is not ours) as a set of directives."""
    found: set[str] = set()
    for part in (text or "").lower().split(","):
        part = part.strip()
        if ":" in part and part.split(":", 1)[0].strip() not in ("robots", "*"):
            continue
        part = part.split(":", 1)[-1].strip()
        found.update({"noindex", "nofollow"} if part == "none" else {part})
    return found


def page_links(body: bytes, page_url: str, robots_header: str | None = None) -> PageLinks:
    """The page's followable links and robots directives (an unparseable page has none)."""
    result = PageLinks()
    directives = robots_directives(robots_header)
    try:
        root = etree.fromstring(body, _PARSER) if body.strip() else None
    except (etree.XMLSyntaxError, ValueError):
        root = None
    if root is None:
        result.nofollow, result.noindex = "nofollow" in directives, "noindex" in directives
        return result
    for meta in root.iter("meta"):
        if (meta.get("name") or "").strip().lower() == "robots":
            directives |= robots_directives(meta.get("content"))
    result.nofollow, result.noindex = "nofollow" in directives, "noindex" in directives
    base = page_url
    for element in root.iter("base"):
        if element.get("href"):
            base = urljoin(page_url, element.get("href").strip())
            break
    for link in root.iter("link"):
        if "canonical" in (link.get("rel") or "").lower().split() and link.get("href"):
            result.canonical = _absolute(base, link.get("href"))
            break
    if result.nofollow:
        return result
    seen: set[str] = set()
    for anchor in root.iter("a", "area"):
        href = anchor.get("href")
        if not href or "nofollow" in (anchor.get("rel") or "").lower().split():
            continue
        url = _absolute(base, href)
        if url is not None and url not in seen:
            seen.add(url)
            result.links.append(url)
    return result


def _absolute(base: str, href: str) -> str | None:
    """`href` resolved and normalised; None for what is not an http(s) URL (mailto:, javascript:,
    a bare fragment's page is the page itself and is left to the caller's seen set)."""
    try:
        url = urljoin(base, href.strip())
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return normal_url(url) if scheme in ("http", "https") else None
