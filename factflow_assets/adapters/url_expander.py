"""`url_expander`: one message per URL of a list, with an id derived from the URL.

The same URL always gets the same message id, so a URL listed twice is fetched once and a
restarted stage finds its earlier outputs. A URL the execution's network policy refuses (another
host, a metadata address) becomes no message: a sitemap listing 10,000 of them would otherwise
leave 10,000 stored messages and 10,000 failed rows behind. The invocation's lineage row counts
them (`refused_urls`) with the first reason; when every URL is refused the row fails with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
from pydantic import Field

from ..fetching.network_policy import RequestRefused
from ..ids import url_slug
from .base import (
    Adapter,
    AdapterConfig,
    Emit,
    Message,
    PermanentError,
    http_url_problem,
)


class UrlExpanderConfig(AdapterConfig):
    field: str = Field("urls", description="The payload field holding the list of URLs.")
    max_urls: int | None = Field(None, ge=1, description="Emit at most this many.")


class UrlExpander(Adapter[UrlExpanderConfig]):
    type = "url_expander"
    config_model = UrlExpanderConfig
    reads_init_fields = ("urls",)

    @classmethod
    def init_payload_problems(cls, config, payload) -> list[str]:
        urls = payload.get(config.field)
        if not isinstance(urls, list):
            return [f"{config.field} must be a list of URLs"]
        return [f"{config.field}[{index}] {url!r} {problem}" for index, url in enumerate(urls) if (problem := http_url_problem(url))]

    async def process(self, message: Message) -> Iterator[Emit]:
        payload = message.json()  # a sitemap's: 10,000 URLs and their lastmod, parsed once
        urls = payload.get(self.config.field)
        if not isinstance(urls, list):
            raise PermanentError(f"payload field {self.config.field!r} is not a list of URLs")
        unique = list(dict.fromkeys(u for u in urls if isinstance(u, str) and u))
        if self.config.max_urls is not None:
            unique = unique[: self.config.max_urls]
        unique = await self._allowed(unique, message)
        lastmod = payload.get("lastmod") or {}
        lastmod = lastmod if isinstance(lastmod, dict) else {}
        # made as the stage stores them: the first page is fetched while the rest are written
        return (
            Emit(body={"url": url}, identity=url, slug=url_slug(url), metadata={"url": url, **({"lastmod": lastmod[url]} if url in lastmod else {})})
            for url in unique
        )

    async def _allowed(self, urls: list[str], message: Message) -> list[str]:
        """The URLs the network policy lets the execution fetch; the refusals noted on `message`.
        The policy judges hosts, so each host is asked once (200,000 URLs of one site: one check)."""
        policy = self.context.network
        if policy is None:
            return urls
        allowed, refusals = [], []
        verdicts: dict[str, str | None] = {}  # netloc -> why refused, or None
        for url in urls:
            netloc = urlsplit(url).netloc.lower()
            if netloc not in verdicts:
                try:
                    await policy.check(httpx.URL(url))
                    verdicts[netloc] = None
                except RequestRefused as refusal:
                    verdicts[netloc] = str(refusal)
                except httpx.InvalidURL:
                    allowed.append(url)  # not the policy's call: the fetch fails with the URL's problem
                    continue
            if verdicts[netloc] is None:
                allowed.append(url)
            else:
                refusals.append(f"{url}: {verdicts[netloc]}")
        if refusals:
            message.notes.update(refused_urls=len(refusals), refused_example=refusals[0][:500])
            if not allowed:
                raise PermanentError(f"the network policy refused all {len(refusals)} URLs, e.g. {refusals[0]}")
        return allowed
