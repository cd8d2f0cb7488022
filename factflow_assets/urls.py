"""URLs as the same page compares: what a link crawl counts once and what duplicates compare.

Two spellings of one page are common on real sites: `HTTP://Docs.Example.com:443/a#part`,
`/a?utm_source=feed`, `/guide/` beside `/guide`, `/api/index.html` beside `/api/`. `normal_url`
keeps what can change the answer (scheme, host, path, the query without tracking parameters) in
one spelling; `same_page` adds the rules that only hold for pages (a trailing slash, an index
file), for counting and comparing, never for fetching: the server decides what `/guide` is.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

#: Query parameters that say where a visitor came from, not which page they asked for.
TRACKING_PARAMETER = re.compile(r"^(?:utm_\w+|gclid|dclid|fbclid|msclkid|mc_cid|mc_eid|_ga|ref|source)$", re.IGNORECASE)
_INDEX_FILE = re.compile(r"/index\.html?$", re.IGNORECASE)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normal_host(host: str) -> str:
    """A host name in one form: lower case, no trailing dot, internationalised names as their
    ASCII (punycode) form, so `Bücher.example.` and `xn--bcher-kva.example` are one host."""
    host = host.strip().rstrip(".").lower()
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def normal_url(url: str) -> str:
    """Scheme and host in one form, no default port, no fragment, no tracking parameters; a URL
    that does not parse comes back as it was."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    host = normal_host(parts.hostname or "")
    if ":" in host:  # an IPv6 address goes back in brackets
        host = f"[{host}]"
    if port and _DEFAULT_PORTS.get(scheme) != port:
        host = f"{host}:{port}"
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = urlencode([(k, v) for k, v in pairs if not TRACKING_PARAMETER.match(k)]) if pairs else parts.query
    return urlunsplit((scheme, host, parts.path or "/", query, ""))


def same_page(url: str) -> str:
    """`normal_url` with a page's equivalences: no trailing slash but the root's, and a directory's
    index file is the directory (`/api/index.html` is `/api`)."""
    normal = normal_url(url)
    parts = urlsplit(normal)
    path = _INDEX_FILE.sub("/", parts.path).rstrip("/") or "/"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def page_key(url: str) -> str:
    """A fixed-length key of `same_page(url)`, for a unique index."""
    return hashlib.sha256(same_page(url).encode()).hexdigest()
