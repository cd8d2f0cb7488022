"""How a message fails for good: raised by the adapters and by the helpers they share (fetching,
extraction, worker processes) alike, so it lives below all of them."""

from __future__ import annotations


class PermanentError(Exception):
    """A failure that retrying cannot fix (a 404, a malformed document): no route retries."""
