"""`web_scraper`: fetch one page, politely.

Obeys robots.txt and its Crawl-delay by default, paces each host with an adaptive (AIMD) rate,
retries 429/5xx/timeouts with backoff and Retry-After, caps redirects and body size, and records
status, content type, final URL and timings. One deadline covers every attempt at a page, and a
body that trickles in below a minimum rate is given up, so a slow server cannot hold a slot for
long. A 4xx, or a 5xx after the retries, fails the message;
so does a robots.txt that cannot be read (the failure names why: connection refused, HTTP 503...).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..fetching.http_fetch import FetchPolicy, FetchResult, fetch, host_of
from ..fetching.rate_limit import AimdRateLimiter
from ..fetching.request_settings import header_name_problem, request_headers
from ..fetching.robots import RobotsCache
from .base import (
    Adapter,
    AdapterConfig,
    Emit,
    Message,
    PermanentError,
    SkipMessage,
    Unchanged,
    http_url_problem,
)


class RateLimitConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    initial_rps: float = Field(5.0, gt=0, description="Requests per second per host to start with.")
    min_rps: float = Field(0.2, gt=0)
    max_rps: float = Field(20.0, gt=0)
    increase: float = Field(1.0, ge=0, description="Added to the rate after each success.")
    decrease: float = Field(0.5, gt=0, lt=1, description="Rate multiplier on 429/503/timeouts.")

    @model_validator(mode="after")
    def _ordered(self):
        if not self.min_rps <= self.initial_rps <= self.max_rps:
            raise ValueError("rates must satisfy min_rps <= initial_rps <= max_rps")
        return self


class FetchConfig(AdapterConfig):
    """How a page is fetched, for every adapter that fetches pages."""

    timeout: float = Field(30.0, gt=0, description="Seconds to connect, or between two reads.")
    total_timeout: float = Field(60.0, gt=0, description="Seconds for one request.")
    deadline: float = Field(60.0, gt=0, description="Seconds for a page, every attempt and wait together; past it the page fails.")
    min_rate: float = Field(1024.0, ge=0, description="Bytes a second below which a download is given up (0: never).")
    rate_window: float = Field(30.0, gt=0, description="Seconds the rate may stay below min_rate before the download is given up.")
    max_redirects: int = Field(5, ge=0)
    retries: int = Field(3, ge=0, description="Retries on 429, 5xx and timeouts.")
    backoff: float = Field(1.0, ge=0, description="First retry delay in seconds; doubles.")
    max_retry_after: float = Field(120.0, ge=0, description="Longest Retry-After honoured.")
    max_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    respect_robots: bool = True
    rate_limit: RateLimitConfig = RateLimitConfig()
    user_agent: str | None = Field(None, description="The User-Agent sent, and the agent robots.txt rules are matched against; `${VAR}` reads a variable.")
    headers: dict[str, str] = Field(
        default_factory=dict, description="Sent with every request (`Authorization: Bearer ${TOKEN}`); never to another host a redirect leads to."
    )
    cookies: dict[str, str] = Field(default_factory=dict, description="Sent as the Cookie header, as headers are.")

    @field_validator("headers")
    @classmethod
    def _header_names(cls, headers: dict[str, str]) -> dict[str, str]:
        for name in headers:
            if problem := header_name_problem(name):
                raise ValueError(problem)
        return headers


class WebScraperConfig(FetchConfig):
    trust_lastmod: bool = Field(
        False,
        description="In an incremental execution, take a page whose sitemap <lastmod> is older than the baseline's fetch "
        "as unchanged without asking (many sites' lastmod is wrong).",
    )


def conditional_headers(baseline: Mapping[str, Any] | None) -> dict[str, str] | None:
    """If-None-Match and If-Modified-Since from what the baseline execution stored for the page
    (its ETag and Last-Modified): a server that supports them answers 304 when nothing changed."""
    if not baseline:
        return None
    headers = {}
    if baseline.get("etag"):
        headers["If-None-Match"] = str(baseline["etag"])
    if baseline.get("last_modified"):
        headers["If-Modified-Since"] = str(baseline["last_modified"])
    return headers or None


def unchanged_by_lastmod(message: Message) -> None:
    """Raise Unchanged when the sitemap's <lastmod> for the page is older than the baseline's fetch."""
    lastmod, fetched = _instant(message.metadata.get("lastmod")), _instant((message.baseline or {}).get("fetched_at"))
    if lastmod is not None and fetched is not None and lastmod < fetched:
        raise Unchanged(f"sitemap lastmod {message.metadata['lastmod']} is older than the baseline's fetch ({(message.baseline or {}).get('fetched_at')})")


#: A W3C datetime as sitemaps write it: a whole date, with a time and zone or not.
_W3C_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?$")
#: Before the web, a lastmod is a placeholder (0001-01-01, 1970-01-01), not a date.
_EARLIEST = datetime(1991, 1, 1, tzinfo=UTC)


def _instant(text: Any) -> datetime | None:
    """A W3C datetime (a date, or a date and time with or without a zone: UTC then) as UTC; None
    for what only looks like one: a placeholder year, a date in the future, a week or ordinal
    date or the basic format (`2026-W05`, `20260101`, which Python would read) or a year alone."""
    if not isinstance(text, str) or not _W3C_DATETIME.match(text.strip()):
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if moment < _EARLIEST or moment > datetime.now(UTC) + timedelta(days=1):
        return None
    return moment


def fetch_metadata(url: str, result: FetchResult) -> dict:
    """What the sidecar of a fetched page says about the fetch."""
    metadata = {
        "url": url,
        "final_url": result.final_url,
        "status": result.status,
        "content_type": result.content_type,
        "fetched_at": result.fetched_at,
        "elapsed_ms": result.elapsed_ms,
        "ttfb_ms": result.ttfb_ms,
        "redirects": result.redirects,
        "attempts": result.attempts,
    }
    for header in ("etag", "last-modified"):
        if header in result.headers:
            metadata[header.replace("-", "_")] = result.headers[header]
    return metadata


FetchConfigT = TypeVar("FetchConfigT", bound=FetchConfig)


class PoliteFetcher(Adapter[FetchConfigT]):
    """What every page-fetching adapter shares: the fetch policy, a per-host pace, robots.txt."""

    async def open(self) -> None:
        c = self.config
        self.policy = FetchPolicy(
            timeout=c.timeout,
            total_timeout=c.total_timeout,
            deadline=c.deadline,
            min_rate=c.min_rate,
            rate_window=c.rate_window,
            max_bytes=c.max_bytes,
            max_redirects=c.max_redirects,
            retries=c.retries,
            backoff=c.backoff,
            max_retry_after=c.max_retry_after,
        )
        r = c.rate_limit
        self.limiter = AimdRateLimiter(r.initial_rps, r.min_rps, r.max_rps, r.increase, r.decrease)
        self.request_headers = request_headers(c.user_agent, c.headers, c.cookies)
        user_agent = self.request_headers.get("User-Agent") or self.context.http.headers.get("user-agent") or "*"
        self.robots = RobotsCache(self.context.http, user_agent, self.request_headers)
        self._delays_applied: set[str] = set()

    async def _obey_robots(self, url: str) -> None:
        """Skip a URL robots.txt disallows; pace its host by its Crawl-delay from the first visit."""
        if not await self.robots.allowed(url):
            raise SkipMessage(f"disallowed by robots.txt: {url}")
        host = host_of(url)
        if host not in self._delays_applied:
            self._delays_applied.add(host)
            delay = await self.robots.crawl_delay(url)
            if delay:
                self.limiter.set_min_interval(host, float(delay))


class WebScraper(PoliteFetcher[WebScraperConfig]):
    type = "web_scraper"
    config_model = WebScraperConfig
    asks_source = True
    fetches_pages = True
    reads_init_fields = ("url",)

    @classmethod
    def init_payload_problems(cls, config, payload) -> list[str]:
        problem = http_url_problem(payload.get("url"))
        return [f"url {payload.get('url')!r} {problem}"] if problem else []

    async def process(self, message: Message) -> list[Emit]:
        url, result = await self._fetch_page(message)
        return [Emit(body=result.body, content_type=result.content_type, metadata=fetch_metadata(url, result))]

    async def _fetch_page(self, message: Message) -> tuple[str, FetchResult]:
        """The message's URL and its page, politely: robots.txt, the host's pace, retries; in an
        incremental execution asked conditionally (Unchanged on a 304, or on an old lastmod)."""
        url = message.json().get("url")
        if not url:
            raise PermanentError("the message has no 'url'")
        if self.config.trust_lastmod:
            unchanged_by_lastmod(message)
        if self.config.respect_robots:
            await self._obey_robots(url)
        result = await fetch(self.context.http, url, self.policy, self.limiter, conditional_headers(message.baseline), self.request_headers)
        if result.status == 304:
            raise Unchanged("304 Not Modified")
        return url, result
