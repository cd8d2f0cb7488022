"""The one content hash factflow uses: for config hashes, input and output hashes, sidecars."""

from __future__ import annotations

import hashlib


def content_hash(data: bytes) -> str:
    """SHA-256 of `data`, as lowercase hex."""
    return hashlib.sha256(data).hexdigest()
