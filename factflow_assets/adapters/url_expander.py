"""`url_expander`: one message per URL of a list, with an id derived from the URL.

The same URL always gets the same message id, so a URL listed twice is fetched once and a
restarted stage finds its earlier outputs.
"""

from __future__ import annotations

from pydantic import Field

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

    async def process(self, message: Message) -> list[Emit]:
        urls = message.json().get(self.config.field)
        if not isinstance(urls, list):
            raise PermanentError(f"payload field {self.config.field!r} is not a list of URLs")
        unique = list(dict.fromkeys(u for u in urls if isinstance(u, str) and u))
        if self.config.max_urls is not None:
            unique = unique[: self.config.max_urls]
        return [
            Emit(body={"url": url}, identity=url, slug=url_slug(url), metadata={"url": url})
            for url in unique
        ]
