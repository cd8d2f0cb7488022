"""Identifiers: time-sortable ids for executions and lineage rows, deterministic message ids.

Execution ids are short, lowercase, URL- and path-safe and sort by creation time (a millisecond
timestamp in Crockford base32 followed by random characters, the ULID idea at a shorter length).
Message ids are derived, never random, so a restarted stage produces the same keys and can skip
work it has already done (architecture §2.5).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from urllib.parse import urlsplit

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
_TIME_CHARS = 10  # 50 bits of milliseconds: good until the year 37,000


def _base32(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def time_sortable_id(random_chars: int) -> str:
    """Millisecond timestamp then `random_chars` random base32 characters."""
    millis = time.time_ns() // 1_000_000
    return _base32(millis, _TIME_CHARS) + _base32(secrets.randbits(5 * random_chars), random_chars)


def new_execution_id() -> str:
    """16 characters; 30 random bits per millisecond is ample for how often executions start."""
    return time_sortable_id(6)


def new_lineage_id() -> str:
    """22 characters; 60 random bits per millisecond for millions of rows."""
    return time_sortable_id(12)


def new_batch_id() -> str:
    return time_sortable_id(8)


def new_replay_id() -> str:
    return time_sortable_id(8)


_SLUG_UNSAFE = re.compile(r"[^a-z0-9]+")


def url_slug(url: str, max_length: int = 40) -> str:
    """A readable hint of a URL for message ids: its last path segments, lowercased."""
    parts = urlsplit(url)
    path = parts.path.strip("/")
    text = path.rsplit(".", 1)[0] if path else parts.hostname or ""
    slug = _SLUG_UNSAFE.sub("-", text.lower()).strip("-")
    return slug[-max_length:].lstrip("-") or "root"


def derived_message_id(stage_path: str, identity: str, slug: str | None) -> str:
    """The id of an emitted message: a stable hash of where it was emitted and what it is.

    `identity` is the emitted item (e.g. a URL) when a stage fans out, or the parent message id
    when it transforms one message into one; `slug` is a readable prefix for operators.
    """
    digest = hashlib.sha256(f"{stage_path}\x00{identity}".encode()).hexdigest()[:16]
    return f"{slug}-{digest}" if slug else digest


def slug_of(message_id: str) -> str | None:
    """The readable prefix of a derived message id, so 1:1 stages keep their parent's slug."""
    slug, sep, digest = message_id.rpartition("-")
    return slug if sep and len(digest) == 16 else None


def init_message_id(route: str, payload_json: str) -> str:
    return derived_message_id(f"{route}/init", payload_json, "init")
