"""`web_content_storage`: the canonical stored page, as UTF-8 HTML with its title and language.

Takes what `web_scraper` fetched and keeps the documents of the types it is told (by default
HTML, plain text, markdown and PDF; anything else is skipped, naming its type). HTML and text
are decoded with the charset the server or the page declares and stored as UTF-8; a PDF is
stored as its bytes. The sidecar says url, status, title and language (of HTML) and fetched-at.
"""

from __future__ import annotations

from pydantic import Field

from ..extraction.documents import decode_html, page_title_and_language
from .base import Adapter, AdapterConfig, Emit, Message, SkipMessage


class WebContentStorageConfig(AdapterConfig):
    content_types: list[str] = Field(
        default_factory=lambda: ["text/html", "application/xhtml+xml", "text/plain", "text/markdown", "text/x-markdown", "application/pdf"],
        description="Media types kept; other documents are skipped.",
    )


class WebContentStorage(Adapter[WebContentStorageConfig]):
    type = "web_content_storage"
    config_model = WebContentStorageConfig

    async def process(self, message: Message) -> list[Emit]:
        media_type = message.content_type.split(";")[0].strip().lower()
        if media_type not in self.config.content_types:
            raise SkipMessage(f"not a type kept here: {media_type or 'no content type'} (content_types: {', '.join(self.config.content_types)})")
        title = language = None
        body: str | bytes
        if media_type in ("text/html", "application/xhtml+xml"):
            body, content_type = decode_html(message.body, message.content_type), "text/html; charset=utf-8"
            title, language = page_title_and_language(body)
        elif media_type.startswith("text/"):
            body, content_type = decode_html(message.body, message.content_type), f"{media_type}; charset=utf-8"
        else:
            body, content_type = message.body, media_type
        source = message.metadata
        return [
            Emit(
                body=body,
                content_type=content_type,
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
