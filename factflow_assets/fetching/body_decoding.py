"""A response body's Content-Encoding undone a piece at a time, never past the size cap.

HTTP clients (httpx, aiohttp) decode each network chunk whole: 1.6 KB of brotli can become 2 GiB
in one call, before any cap sees a byte. So fetches read the raw bytes (aiohttp's
`auto_decompress` off) and decode them here, asking each decompressor for at most what the cap
still allows (zlib's `max_length`, brotli's `output_buffer_limit`): a decompression bomb costs
the cap, not the machine. gzip, deflate (zlib-wrapped or raw, as
browsers accept it) and br are what factflow asks for; anything else passes through as it came,
as HTTP clients do.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Protocol

import brotli

#: What a fetch says it accepts: the encodings decoded here.
ACCEPT_ENCODING = "gzip, deflate, br"


class DecodedTooLarge(Exception):
    """The decoded body would pass the cap; `partial` holds what the chunk decoded to within it."""

    def __init__(self, partial: bytes = b""):
        super().__init__("the decoded body passes the cap")
        self.partial = partial


class DecodeFailed(Exception):
    """The body is not what its Content-Encoding says."""


class _Zlib:
    def __init__(self, wbits: int, fallback_wbits: int | None = None):
        self._object = zlib.decompressobj(wbits)
        self._fallback = fallback_wbits
        self._first = True

    def decode(self, data: bytes, room: int) -> bytes:
        try:
            out = self._object.decompress(data, room + 1)
        except zlib.error as error:
            if self._first and self._fallback is not None:  # "deflate" sent raw, without zlib's header
                self._object, self._fallback = zlib.decompressobj(self._fallback), None
                return self.decode(data, room)
            raise DecodeFailed(str(error)) from error
        self._first = False
        if len(out) > room or self._object.unconsumed_tail:
            raise DecodedTooLarge(out[:room])
        return out


class _Brotli:
    def __init__(self):
        self._object = brotli.Decompressor()

    def decode(self, data: bytes, room: int) -> bytes:
        try:
            out = self._object.process(data, output_buffer_limit=room + 1)
        except brotli.error as error:
            raise DecodeFailed(str(error)) from error
        if len(out) > room or not self._object.can_accept_more_data():
            raise DecodedTooLarge(out[:room])
        return out


class _Decoder(Protocol):
    def decode(self, data: bytes, room: int) -> bytes: ...


class _Identity:
    def decode(self, data: bytes, room: int) -> bytes:
        if len(data) > room:
            raise DecodedTooLarge(data[:room])
        return data


_DECODERS: dict[str, Callable[[], _Decoder]] = {
    "gzip": lambda: _Zlib(16 + zlib.MAX_WBITS),
    "x-gzip": lambda: _Zlib(16 + zlib.MAX_WBITS),
    "deflate": lambda: _Zlib(zlib.MAX_WBITS, -zlib.MAX_WBITS),
    "br": _Brotli,
}


class CappedDecoder:
    """Decodes a body's chunks as they arrive; raises DecodedTooLarge past `max_bytes` decoded."""

    def __init__(self, content_encoding: str | None, max_bytes: int):
        codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
        # applied in the order listed, so undone from the last
        self._chain = [_DECODERS.get(coding, _Identity)() for coding in reversed(codings)] or [_Identity()]
        self.max_bytes = max_bytes
        self.size = 0

    def decode(self, chunk: bytes) -> bytes:
        """The chunk decoded; DecodedTooLarge past the cap, its `partial` what still fitted (the
        last decoder's; a chain of several gives up without one)."""
        room = self.max_bytes - self.size
        for position, decoder in enumerate(self._chain):
            try:
                chunk = decoder.decode(chunk, room)
            except DecodedTooLarge as error:
                if position < len(self._chain) - 1:
                    raise DecodedTooLarge() from None
                self._partial = error.partial
                raise
        self.size += len(chunk)
        return chunk

    def rest(self) -> bytes:
        """What the chunk that passed the cap decoded to within it (for a body kept truncated)."""
        return getattr(self, "_partial", b"")
