"""`link_crawler`: find a site's pages by following links from seed URLs, fetching each once.

For a site without a sitemap, or one whose sitemap lists a fraction of it. The stage's input only
seeds the crawl (`start_url`, `start_urls`, or a sitemap's `urls` when it follows
`sitemap_parser`); the engine keeps the frontier in the factflow database (`engine/frontier.py`)
and hands the stage one URL at a time. For each, the page is fetched exactly as `web_scraper`
fetches one (robots.txt, pacing, retries, caps, the network policy) and emitted as its page; the
links it holds that are in scope are handed back to the frontier (`Message.discovered`).

Scope: by default a seed's host and path prefix (`https://docs.example.com/en/latest/` for a seed
`.../en/latest/index.html`), or its whole host (`scope: host`); a URL matching an `include`
pattern is in scope as well, one matching an `exclude` pattern never is. Links are followed to
`max_depth` links from a seed, and at most `max_pages` URLs are queued. Links to files that are
no page (images, archives, media, fonts, styles, scripts) are not queued. `rel=nofollow`,
`<meta name=robots>` and `X-Robots-Tag` are honoured: a `noindex` page is skipped but its links
are followed, a `nofollow` one is kept but its links are not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import Field, field_validator

from ..fetching.http_fetch import fetch
from ..fetching.network_policy import RequestRefused
from ..fetching.page_links import is_html, page_links
from ..urls import normal_url
from .base import Emit, Message, SkipMessage, http_url_problem, regex_list
from .web_scraper import FetchConfig, PoliteFetcher, fetch_metadata

#: Extensions of files that are not pages; a link to one is not queued.
NOT_PAGES = (
    "png", "jpg", "jpeg", "gif", "webp", "svg", "ico", "bmp", "tif", "tiff", "avif",
    "zip", "gz", "tgz", "bz2", "xz", "7z", "rar", "tar", "whl", "jar", "exe", "dmg", "msi", "deb", "rpm", "iso",
    "mp3", "mp4", "m4a", "webm", "ogg", "wav", "avi", "mov", "mkv",
    "woff", "woff2", "ttf", "otf", "eot", "css", "js", "mjs", "map", "wasm",
)


class LinkCrawlerConfig(FetchConfig):
    max_depth: int = Field(5, ge=0, description="Links followed from a seed (0: the seeds alone).")
    max_pages: int = Field(10_000, ge=1, description="URLs queued at most, seeds included.")
    scope: Literal["prefix", "host"] = Field("prefix", description="`prefix`: a seed's host and path folder; `host`: its whole host.")
    include: list[str] = Field(default_factory=list, description="Regexes (searched in the URL): also in scope.")
    exclude: list[str] = Field(default_factory=list, description="Regexes (searched in the URL): never in scope.")
    skip_extensions: list[str] = Field(default_factory=lambda: list(NOT_PAGES), description="Links to files with these extensions are not queued.")

    _patterns_compile = field_validator("include", "exclude")(regex_list)


class LinkCrawler(PoliteFetcher[LinkCrawlerConfig]):
    type = "link_crawler"
    config_model = LinkCrawlerConfig
    follows_links = True
    asks_source = True
    fetches_pages = True
    reads_init_fields = ("start_url",)

    @classmethod
    def seed_urls(cls, config: LinkCrawlerConfig, payload: Mapping[str, Any]) -> list[str]:
        """The URLs a message of the stage's input starts the crawl from."""
        found: list[str] = []
        for name in ("start_url", "start_urls", "urls"):
            value = payload.get(name)
            for url in [value] if isinstance(value, str) else value if isinstance(value, list) else []:
                if isinstance(url, str) and http_url_problem(url) is None:
                    found.append(normal_url(url))
        return found

    @classmethod
    def scope_of(cls, config: LinkCrawlerConfig, seed: str) -> str:
        """The URL prefix a seed's crawl stays under."""
        parts = urlsplit(normal_url(seed))
        folder = parts.path[: parts.path.rfind("/") + 1] if config.scope == "prefix" else "/"
        return f"{parts.scheme}://{parts.netloc}{folder or '/'}"

    @classmethod
    def init_payload_problems(cls, config, payload) -> list[str]:
        urls = [payload.get("start_url")] if "start_url" in payload else payload.get("start_urls")
        if not isinstance(urls, list) or not urls:
            return ["start_url (a URL) or start_urls (a list of URLs) is needed"]
        return [f"start URL {url!r} {problem}" for url in urls if (problem := http_url_problem(url))]

    async def open(self) -> None:
        await super().open()
        self.include = [re.compile(p) for p in self.config.include]
        self.exclude = [re.compile(p) for p in self.config.exclude]
        self.skipped_extensions = {ext.lower().lstrip(".") for ext in self.config.skip_extensions}

    async def process(self, message: Message) -> list[Emit]:
        item = message.json()
        url = item["url"]
        if self.config.respect_robots:
            await self._obey_robots(url)
        # no conditional request: a 304 would leave the page's links unknown
        result = await fetch(self.context.http, url, self.policy, self.limiter, headers=self.request_headers)
        metadata = fetch_metadata(url, result)
        if is_html(result.content_type):
            found = page_links(result.body, result.final_url, result.headers.get("x-robots-tag"))
            if found.canonical:
                metadata["canonical_url"] = found.canonical
            if item["depth"] < self.config.max_depth:
                message.discovered.extend(await self._in_scope(found.links, item["scope"], message))
            message.notes.update(links=len(found.links), queued_links=len(message.discovered))
            if found.noindex:
                raise SkipMessage(f"the page says noindex: {url}")
        return [Emit(body=result.body, content_type=result.content_type, metadata=metadata)]

    async def _in_scope(self, links: list[str], scope: str, message: Message) -> list[str]:
        kept, refused = [], 0
        for link in links:
            if not self._wanted(link, scope):
                continue
            if self.context.network is not None:
                try:
                    await self.context.network.check(httpx.URL(link))
                except (RequestRefused, httpx.InvalidURL):
                    refused += 1
                    continue
            kept.append(link)
        if refused:
            message.notes["refused_links"] = refused
        return kept

    def _wanted(self, url: str, scope: str) -> bool:
        if any(pattern.search(url) for pattern in self.exclude):
            return False
        path = urlsplit(url).path
        extension = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
        if extension in self.skipped_extensions:
            return False
        return url.startswith(scope) or any(pattern.search(url) for pattern in self.include)
