"""robots.txt rules per origin, fetched once and cached for the stage run (RFC 9309).

A missing or unavailable robots.txt (4xx, too many redirects) allows everything. A large one is
read as far as its first 512 KiB (RFC 9309 asks crawlers to parse at least the first 500 KiB),
cut at its last whole line, so its first groups still hold. An unreachable one (5xx after retries, a network error, a timeout) means the crawler
must hold back, as the RFC asks, so a struggling server is not crawled harder: every page of that
origin then fails with `RobotsUnreachable`, whose message names the real cause. To the operator
that is a failure (the page was not fetched and nothing says why otherwise), never a skip.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import aiohttp
from protego import Protego

from resources.errors import error_text

from ..failures import PermanentError
from .http_fetch import (
    TRANSPORT_ERRORS,
    FetchPolicy,
    HttpStatusError,
    ResponseTooLarge,
    TooManyRedirects,
    fetch,
)

_ALLOW_ALL = Protego.parse("")

ROBOTS_POLICY = FetchPolicy(timeout=10, total_timeout=30, max_bytes=512 * 1024, retries=1, backoff=0.5, truncate=True)


class RobotsUnreachable(PermanentError):
    """robots.txt could not be read because the server or the network failed."""

    def __init__(self, origin: str, cause: str):
        super().__init__(f"robots.txt of {origin} could not be fetched ({cause}); RFC 9309: nothing of {origin} is crawled while it cannot be read")
        self.origin = origin
        self.cause = cause


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


async def fetch_robots(client: aiohttp.ClientSession, origin: str, policy: FetchPolicy = ROBOTS_POLICY, headers: dict[str, str] | None = None) -> Protego:
    """The origin's rules (asked with the stage's request headers: a site that refuses unknown
    agents refuses its robots.txt to them too); RobotsUnreachable (with the cause) when the server
    or network failed."""
    try:
        result = await fetch(client, f"{origin}/robots.txt", policy, headers=headers)
    except HttpStatusError as error:
        if 400 <= error.status < 500:
            return _ALLOW_ALL
        raise RobotsUnreachable(origin, str(error)) from error
    except (TooManyRedirects, ResponseTooLarge):
        return _ALLOW_ALL
    except TRANSPORT_ERRORS as error:
        raise RobotsUnreachable(origin, f"{type(error).__name__}: {error_text(error)}") from error
    body = result.body
    if len(body) >= policy.max_bytes and b"\n" in body:  # cut short: the last line may be half a rule
        body = body[: body.rindex(b"\n") + 1]
    return Protego.parse(body.decode("utf-8", errors="replace"))


class RobotsCache:
    """One fetch per origin per stage run; an unreachable robots.txt fails every page of its origin
    with the same cause."""

    def __init__(self, client: aiohttp.ClientSession, user_agent: str, headers: dict[str, str] | None = None):
        self.client = client
        self.user_agent = user_agent
        self.headers = headers
        self._rules: dict[str, asyncio.Task[Protego]] = {}

    async def rules(self, url: str) -> Protego:
        origin = origin_of(url)
        task = self._rules.get(origin)
        if task is None:
            task = self._rules[origin] = asyncio.ensure_future(fetch_robots(self.client, origin, headers=self.headers))
        return await task

    async def allowed(self, url: str) -> bool:
        return (await self.rules(url)).can_fetch(url, self.user_agent)

    async def crawl_delay(self, url: str) -> float | None:
        return (await self.rules(url)).crawl_delay(self.user_agent)
