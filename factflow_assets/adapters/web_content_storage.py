"""`web_content_storage`: the canonical stored page, as UTF-8 HTML with its title and language.

Takes what `web_scraper` fetched, keeps HTML (anything else is skipped with the reason), decodes
it with the charset the server or the page declares, and emits it with url, status, title,
language and fetched-at in the sidecar.
"""

from __future__ import annotations

from pydantic import Field

from .base import Adapter, AdapterConfig, Emit, Message, SkipMessage
from .documents import decode_html, page_title_and_language


class WebContentStorageConfig(AdapterConfig):
    content_types: list[str] = Field(
        default_factory=lambda: ["text/html", "application/xhtml+xml"],
        description="Media types kept; other pages are skipped.",
    )


class WebContentStorage(Adapter[WebContentStorageConfig]):
    type = "web_content_storage"
    config_model = WebContentStorageConfig

    async def process(self, message: Message) -> list[Emit]:
        media_type = message.content_type.split(";")[0].strip().lower()
        if media_type not in self.config.content_types:
            raise SkipMessage(f"not HTML: {media_type or 'no content type'}")
        html = decode_html(message.body, message.content_type)
        title, language = page_title_and_language(html)
        source = message.metadata
        return [
            Emit(
                body=html,
                content_type="text/html; charset=utf-8",
                metadata={
                    "url": source.get("url"),
                    "final_url": source.get("final_url"),
                    "status": source.get("status"),
                    "fetched_at": source.get("fetched_at"),
                    "title": title,
                    "language": language,
                },
            )
        ]
