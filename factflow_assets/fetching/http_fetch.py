"""Fetching one URL the careful way: capped size, capped redirects, total deadline, retries.

Shared by the sitemap parser and the web scraper. Redirects are followed by hand so that the cap
and the final URL are ours to record; bodies are streamed, decoded a piece at a time
(body_decoding.py: a compressed bomb costs the cap, not the machine) and abandoned past
`max_bytes` decoded; 429, 5xx and timeouts are retried with exponential backoff, honouring
Retry-After.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from resources.http import proxy_for

from ..failures import PermanentError
from .body_decoding import ACCEPT_ENCODING, CappedDecoder, DecodedTooLarge, DecodeFailed
from .rate_limit import AimdRateLimiter
from .request_settings import CREDENTIAL_HEADERS

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
THROTTLE_STATUSES = frozenset({429, 503})


class HttpStatusError(PermanentError):
    """The server answered with an error status (after retries, where retrying made sense)."""

    def __init__(self, url: str, status: int, reason: str):
        super().__init__(f"HTTP {status} {reason} for {url}")
        self.status = status


class ResponseTooLarge(PermanentError):
    pass


class TooManyRedirects(PermanentError):
    pass


class UndecodableBody(PermanentError):
    """The body is not what its Content-Encoding says it is."""


class Stalled(PermanentError):
    """The body came slower than the policy's minimum rate for a whole window (curl's --speed-limit)."""


class PageDeadline(PermanentError):
    """The page's deadline, over every attempt, passed before an answer came whole."""


class UnfetchableUrl(PermanentError):
    """A URL (or a redirect's Location) no request can be made for: not http(s), or malformed."""


class MalformedResponse(PermanentError):
    """The server's answer is not valid HTTP/1.1 as aiohttp's parser reads it. It refuses what lets
    a response be smuggled (Content-Length beside Transfer-Encoding, Content-Length twice), which
    httpx read; asking again gets the same answer."""


#: What failing to reach a server looks like: retried, and named in the page's failed row.
TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError)


@dataclass(frozen=True)
class FetchPolicy:
    timeout: float = 30.0
    total_timeout: float = 120.0
    max_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5
    retries: int = 3
    backoff: float = 1.0
    max_retry_after: float = 120.0
    deadline: float | None = None  # seconds for every attempt at one URL together; None: no limit
    min_rate: float = 0.0  # bytes a second below which a body that trickles for `rate_window` is given up
    rate_window: float = 30.0
    truncate: bool = False  # past max_bytes: keep the first max_bytes (robots.txt) instead of failing


@dataclass(frozen=True)
class FetchResult:
    url: str
    final_url: str
    status: int
    reason: str
    headers: Mapping[str, str]  # case-insensitive (the response's own)
    body: bytes
    elapsed_ms: float
    ttfb_ms: float
    redirects: int
    attempts: int
    fetched_at: str

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "application/octet-stream")

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


async def _read_capped(response: aiohttp.ClientResponse, policy: FetchPolicy) -> bytes:
    """The body, within the size cap, given up when it trickles in below the minimum rate."""
    max_bytes = policy.max_bytes
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes and not policy.truncate:
        raise ResponseTooLarge(f"response of {declared} bytes exceeds the cap of {max_bytes}")
    chunks = []
    decoder = CappedDecoder(response.headers.get("content-encoding"), max_bytes)
    window_start, window_bytes = time.monotonic(), 0
    async for raw in response.content.iter_any():
        try:
            chunks.append(decoder.decode(raw))
        except DecodedTooLarge:
            if policy.truncate:
                return b"".join(chunks) + decoder.rest()
            raise ResponseTooLarge(f"response exceeds the cap of {max_bytes} bytes (decoded)") from None
        except DecodeFailed as error:
            raise UndecodableBody(f"the body is not valid {response.headers.get('content-encoding')}: {error}") from None
        if policy.min_rate:
            window_bytes += len(raw)
            elapsed = time.monotonic() - window_start
            if elapsed >= policy.rate_window:
                rate = window_bytes / elapsed
                if rate < policy.min_rate:
                    raise Stalled(f"stalled: {rate:.0f} B/s for {elapsed:.0f} s (the minimum is {policy.min_rate:g} B/s) at {response.url}")
                window_start, window_bytes = time.monotonic(), 0
    return b"".join(chunks)


async def fetch_once(client: aiohttp.ClientSession, url: str, policy: FetchPolicy, headers: dict[str, str] | None = None) -> FetchResult:
    """One GET with redirects followed by hand, within `policy.total_timeout`. The caller's
    credentials (Authorization, Cookie) are not sent on to another origin a redirect leads to."""
    started = time.perf_counter()
    current = _request_url(url, url)
    headers = headers or {}
    timeout = aiohttp.ClientTimeout(total=None, connect=policy.timeout, sock_read=policy.timeout)
    async with asyncio.timeout(policy.total_timeout):
        for hop in range(policy.max_redirects + 1):
            sent = {"Accept-Encoding": ACCEPT_ENCODING, **headers}
            async with _answer(client, current, sent, timeout) as response:
                ttfb = (time.perf_counter() - started) * 1000
                location = response.headers.get("location")
                if response.status in REDIRECT_STATUSES and location is not None:
                    following = _request_url(location, url, base=response.url)
                    if following.origin() != current.origin():
                        headers = {name: value for name, value in headers.items() if name.lower() not in CREDENTIAL_HEADERS}
                    current = following
                    continue
                body = await _read_capped(response, policy)
            return FetchResult(
                url=url,
                final_url=str(response.url),
                status=response.status,
                reason=response.reason or "",
                headers=response.headers,
                body=body,
                elapsed_ms=round((time.perf_counter() - started) * 1000, 1),
                ttfb_ms=round(ttfb, 1),
                redirects=hop,
                attempts=1,
                fetched_at=datetime.now(UTC).isoformat(timespec="seconds"),
            )
    raise TooManyRedirects(f"more than {policy.max_redirects} redirects from {url}")


@asynccontextmanager
async def _answer(client: aiohttp.ClientSession, url: URL, headers: dict[str, str], timeout: aiohttp.ClientTimeout) -> AsyncIterator[aiohttp.ClientResponse]:
    """The response to one GET, its headers read; MalformedResponse when they cannot be (aiohttp
    reports its parser's refusal as a ClientResponseError with the status 400, which no server
    sent: the row says what was wrong instead)."""
    try:
        response = await client.get(url, headers=headers, allow_redirects=False, timeout=timeout, proxy=proxy_for(url))
    except aiohttp.ClientResponseError as error:
        raise MalformedResponse(f"the answer of {url} is not valid HTTP: {' '.join(error.message.split())}") from None
    try:
        yield response
    finally:
        response.release()


def _request_url(target: str, asked: str, base: URL | None = None) -> URL:
    """`target` (a redirect's Location resolved against `base`) as a URL a GET can be sent to;
    UnfetchableUrl, naming the page `asked` for, when it is not an http(s) URL with a host."""
    try:
        resolved = base.join(URL(target)) if base is not None else URL(target)
    except (ValueError, TypeError) as error:
        raise UnfetchableUrl(f"cannot fetch {target!r} (for {asked}): {error}") from None
    if resolved.scheme not in ("http", "https") or not resolved.raw_host:
        raise UnfetchableUrl(f"cannot fetch {target!r} (for {asked}): not an http(s) URL with a host")
    return resolved.with_fragment(None)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Retry-After as seconds, from either of its forms (delta-seconds or an HTTP date)."""
    value = headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


async def fetch(
    client: aiohttp.ClientSession,
    url: str,
    policy: FetchPolicy,
    limiter: AimdRateLimiter | None = None,
    conditional: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> FetchResult:
    """GET `url` (with `headers`: the stage's request settings), retrying 429/5xx and timeouts,
    all within the policy's deadline; raise `HttpStatusError` unless it ends 2xx (or 304 to a
    `conditional` request: If-None-Match, If-Modified-Since), `PageDeadline` (naming the last
    cause) past the deadline."""
    attempts: list[str] = []
    deadline = asyncio.timeout(policy.deadline)
    try:
        async with deadline:
            return await _fetch_retrying(client, url, policy, limiter, attempts, conditional, headers)
    except TimeoutError:
        if not deadline.expired():  # one attempt's own timeout, out of retries: that is the cause
            raise
        ended = [cause for cause in attempts if cause]
        last = f"last: {ended[-1]}" if ended else "none answered"
        raise PageDeadline(f"no whole answer from {url} within its {policy.deadline:g} s deadline ({len(attempts)} attempt(s); {last})") from None


async def _fetch_retrying(
    client: aiohttp.ClientSession, url: str, policy: FetchPolicy, limiter: AimdRateLimiter | None, attempts: list[str],
    conditional: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> FetchResult:
    host = host_of(url)
    sent = {**(headers or {}), **(conditional or {})}
    attempt = 0
    while True:
        attempt += 1
        attempts.append("")  # the cause, once this attempt has ended
        if limiter:
            await limiter.acquire(host)
        try:
            result = await fetch_once(client, url, policy, sent)
        except TRANSPORT_ERRORS as error:
            attempts[-1] = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            if limiter:
                limiter.on_throttle(host)
            if attempt > policy.retries:
                raise
            await asyncio.sleep(_backoff(policy, attempt))
            continue
        if limiter:
            if result.status in THROTTLE_STATUSES:
                limiter.on_throttle(host)
            elif result.status < 500:
                limiter.on_success(host)
        attempts[-1] = f"HTTP {result.status} {result.reason}"
        if result.status in RETRY_STATUSES and attempt <= policy.retries:
            delay = retry_after_seconds(result.headers)
            if delay is not None and delay > policy.max_retry_after:
                reason = f"{result.reason} (Retry-After {delay:.0f} s is over the {policy.max_retry_after:.0f} s limit)"
                raise HttpStatusError(url, result.status, reason)
            await asyncio.sleep(delay if delay is not None else _backoff(policy, attempt))
            continue
        if not result.ok and not (result.status == 304 and conditional):
            raise HttpStatusError(url, result.status, result.reason)
        return replace(result, attempts=attempt)


def _backoff(policy: FetchPolicy, attempt: int) -> float:
    base = policy.backoff * 2 ** (attempt - 1)
    return base * (0.5 + random.random())

