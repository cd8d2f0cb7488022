"""`sitemap_parser`: from a sitemap URL, a site root or a robots.txt, every page URL it lists.

Given a site root or a robots.txt, the sitemaps come from robots.txt `Sitemap:` lines (falling
back to /sitemap.xml). Sitemap indexes are followed breadth first up to `max_depth`, with a loop
guard and a cap on documents fetched; the documents waiting are fetched `concurrency` at a time
and read in the order they were listed, so the URLs come out in the same order whatever answers
first (an index of 400 sitemaps took 13 s one by one). A child sitemap that fails is noted in the output's
`errors`; only a failure of the first document fails the message.
"""

from __future__ import annotations

import asyncio
import re
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from ..fetching.http_fetch import FetchPolicy, fetch
from ..fetching.robots import RobotsUnreachable, fetch_robots, origin_of
from ..fetching.sitemap_documents import SitemapDocument, parse_sitemap
from .base import (
    Adapter,
    AdapterConfig,
    Emit,
    Message,
    PermanentError,
    http_url_problem,
    regex_list,
)


class SitemapParserConfig(AdapterConfig):
    max_urls: int = Field(10_000, ge=1, description="Stop collecting after this many page URLs.")
    max_depth: int = Field(3, ge=0, description="How deep to follow nested sitemap indexes.")
    max_sitemaps: int = Field(200, ge=1, description="Most sitemap documents fetched.")
    concurrency: int = Field(4, ge=1, le=32, description="Sitemap documents fetched at once (an index's children).")
    include: list[str] = Field(default_factory=list, description="Keep URLs matching any regex.")
    exclude: list[str] = Field(default_factory=list, description="Drop URLs matching any regex.")
    timeout: float = Field(30.0, gt=0)
    max_bytes: int = Field(50 * 1024 * 1024, ge=1024, description="Cap per document, decompressed.")
    retries: int = Field(2, ge=0)

    _patterns_compile = field_validator("include", "exclude")(regex_list)


class SitemapParser(Adapter[SitemapParserConfig]):
    type = "sitemap_parser"
    config_model = SitemapParserConfig
    asks_source = True
    reads_init_fields = ("sitemap_url", "url")

    @classmethod
    def init_payload_problems(cls, config, payload) -> list[str]:
        start = payload["sitemap_url"] if "sitemap_url" in payload else payload.get("url")
        if start is None:
            return ["sitemap_url is missing"]
        problem = http_url_problem(start)
        return [f"sitemap_url {start!r} {problem}"] if problem else []

    async def open(self) -> None:
        self.policy = FetchPolicy(
            timeout=self.config.timeout,
            total_timeout=self.config.timeout * 4,
            max_bytes=self.config.max_bytes,
            retries=self.config.retries,
            backoff=0.5,
        )
        self.include = [re.compile(p) for p in self.config.include]
        self.exclude = [re.compile(p) for p in self.config.exclude]

    def _wanted(self, url: str) -> bool:
        if self.include and not any(p.search(url) for p in self.include):
            return False
        return not any(p.search(url) for p in self.exclude)

    async def _seed_sitemaps(self, url: str) -> list[str]:
        path = urlsplit(url).path
        if path not in ("", "/") and not path.endswith("/robots.txt"):
            return [url]
        try:
            listed = list((await fetch_robots(self.context.http, origin_of(url), self.policy)).sitemaps)
        except RobotsUnreachable:
            if path.endswith("/robots.txt"):
                raise
            listed = []  # the site root: try the usual place, whose own failure says what is wrong
        if listed:
            return listed
        if path.endswith("/robots.txt"):
            raise PermanentError(f"{url} lists no Sitemap: lines")
        return [f"{origin_of(url)}/sitemap.xml"]

    async def _document(self, sitemap_url: str) -> SitemapDocument:
        result = await fetch(self.context.http, sitemap_url, self.policy)
        return parse_sitemap(result.body, result.final_url, self.config.max_bytes)

    def _collect(self, document: SitemapDocument, urls: dict[str, None], lastmod: dict[str, str]) -> bool:
        """Add the document's wanted page URLs (and their lastmod); whether max_urls is reached."""
        for url in document.urls:
            if url not in urls and self._wanted(url):
                urls[url] = None
                if url in document.lastmod:
                    lastmod[url] = document.lastmod[url]
                if len(urls) >= self.config.max_urls:
                    return True
        return False

    async def process(self, message: Message) -> list[Emit]:
        payload = message.json()
        start_url = payload.get("sitemap_url") or payload.get("url")
        if not start_url:
            raise PermanentError("the message has no 'sitemap_url'")

        queue = [(url, 0) for url in await self._seed_sitemaps(start_url)]
        seen_sitemaps = {url for url, _ in queue}
        fetched: list[str] = []
        errors: list[dict] = []
        urls: dict[str, None] = {}  # ordered set
        lastmod: dict[str, str] = {}
        truncated = False

        while queue and not truncated:
            room = self.config.max_sitemaps - len(fetched)
            if room <= 0:
                errors.append({"sitemap": queue[0][0], "error": f"max_sitemaps ({self.config.max_sitemaps}) reached"})
                break
            wave, queue = queue[: min(room, self.config.concurrency)], queue[min(room, self.config.concurrency) :]
            documents = await asyncio.gather(*(self._document(url) for url, _depth in wave), return_exceptions=True)
            for (sitemap_url, depth), document in zip(wave, documents):
                if truncated:
                    break
                if isinstance(document, BaseException):
                    if not fetched:
                        raise document  # the first document failing fails the message
                    errors.append({"sitemap": sitemap_url, "error": f"{type(document).__name__}: {document}"})
                    continue
                fetched.append(sitemap_url)
                truncated = self._collect(document, urls, lastmod)
                for child in document.sitemaps:
                    if child in seen_sitemaps:
                        errors.append({"sitemap": child, "error": "already visited (loop guard)"})
                    elif depth + 1 > self.config.max_depth:
                        errors.append({"sitemap": child, "error": f"deeper than max_depth {self.config.max_depth}"})
                    else:
                        seen_sitemaps.add(child)
                        queue.append((child, depth + 1))

        return [
            Emit(
                body={
                    "sitemap_url": start_url,
                    "urls": list(urls),
                    "lastmod": lastmod,
                    "sitemaps": fetched,
                    "errors": errors,
                    "truncated": truncated,
                },
                identity=start_url,
                slug="sitemap",
                metadata={"url": start_url, "url_count": len(urls), "sitemap_count": len(fetched)},
            )
        ]
