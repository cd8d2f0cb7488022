"""robots.txt rules per origin, fetched once and cached for the stage run (RFC 9309).

A missing or unavailable robots.txt (4xx, too many redirects, too large to read) allows
everything; an unreachable one (5xx, network error) disallows everything, as the RFC asks, so a
struggling server is not crawled harder.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import httpx
from protego import Protego

from .http_fetch import FetchPolicy, HttpStatusError, ResponseTooLarge, TooManyRedirects, fetch

_ALLOW_ALL = Protego.parse("")
_DISALLOW_ALL = Protego.parse("User-agent: *\nDisallow: /")

ROBOTS_POLICY = FetchPolicy(timeout=10, total_timeout=30, max_bytes=512 * 1024, retries=1, backoff=0.5)


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


async def fetch_robots(client: httpx.AsyncClient, origin: str, policy: FetchPolicy = ROBOTS_POLICY) -> Protego:
    try:
        result = await fetch(client, f"{origin}/robots.txt", policy)
    except HttpStatusError as error:
        return _ALLOW_ALL if 400 <= error.status < 500 else _DISALLOW_ALL
    except (TooManyRedirects, ResponseTooLarge):
        return _ALLOW_ALL
    except (httpx.HTTPError, TimeoutError):
        return _DISALLOW_ALL
    return Protego.parse(result.body.decode("utf-8", errors="replace"))


class RobotsCache:
    def __init__(self, client: httpx.AsyncClient, user_agent: str):
        self.client = client
        self.user_agent = user_agent
        self._rules: dict[str, asyncio.Task[Protego]] = {}

    async def rules(self, url: str) -> Protego:
        origin = origin_of(url)
        task = self._rules.get(origin)
        if task is None:
            task = self._rules[origin] = asyncio.ensure_future(fetch_robots(self.client, origin))
        return await task

    async def allowed(self, url: str) -> bool:
        return (await self.rules(url)).can_fetch(url, self.user_agent)

    async def crawl_delay(self, url: str) -> float | None:
        return (await self.rules(url)).crawl_delay(self.user_agent)
