"""`html_to_markdown`: a stored page becomes its main content as GitHub-flavoured markdown.

The conversion (markdown_extraction.py) is CPU work, so it runs in worker processes and the
stage's event loop stays free for storage and lineage I/O. The sidecar carries the page's title
(its `<h1>` when the page has one), language, a hash of the markdown and the id of the page's
message, so a segment's chain leads back to the page and its URL. It also says how the content
was found (`extraction`: the region the page marks, or boilerplate detection for an article) and,
on the region path, what the region held and what the markdown kept (`structure`, and
`structure_lost` when the markdown has fewer of a kind), so a loss is visible on the row, in the
stage's `structure_kept` check and in `execution get`.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from pydantic import Field

from resources.hashing import content_hash

from ..extraction.document_markdown import MARKDOWN_TYPES, PDF_TYPES, TEXT_TYPES, media_type
from ..extraction.documents import MARKDOWN_CONTENT_TYPE
from ..extraction.page_conversion import document_in_worker, extract_in_worker
from ..extraction.structure_counts import describe_losses, describe_structure
from ..extraction.text_signature import SIGNATURE_MODULES
from ..workers.process_pool import WorkerPool, default_workers
from .base import Adapter, AdapterConfig, Emit, Message, PermanentError, SkipMessage


class HtmlToMarkdownConfig(AdapterConfig):
    preserve_links: bool = Field(True, description="Keep links as [text](url); otherwise only their text.")
    preserve_images: bool = Field(True, description="Keep images of the main content as ![alt](src).")
    workers: int | None = Field(None, ge=1, le=32, description="Worker processes; default: CPU count, at most 4.")
    timeout: float = Field(60.0, gt=0, le=600, description="Seconds one page may take before it fails.")
    max_pdf_pages: int = Field(2000, ge=1, description="Pages of a PDF read at most (the rest is left out, and said so in the sidecar).")


class HtmlToMarkdown(Adapter[HtmlToMarkdownConfig]):
    type = "html_to_markdown"
    config_model = HtmlToMarkdownConfig

    #: trafilatura, lxml, Resiliparse, and what the shingle signature needs: ~0.7 s to import, in
    #: the worker processes only; page_conversion holds what they run (unpickling a task imports
    #: its module: were it this one, each worker's first page would import every adapter).
    worker_modules = (
        "factflow_assets.extraction.page_conversion", "factflow_assets.extraction.markdown_extraction",
        "factflow_assets.extraction.text_signature", *SIGNATURE_MODULES,
    )
    #: pypdf is imported by a worker on its first PDF only: most crawls have none.

    async def open(self) -> None:
        self._pool = WorkerPool(self.config.workers or default_workers(), self.config.timeout, preload=list(self.worker_modules))
        await self._pool.start()

    async def close(self) -> None:
        await asyncio.to_thread(self._pool.close)

    async def process(self, message: Message) -> list[Emit]:
        kind = document_kind(message.content_type)
        if kind is None:
            raise SkipMessage(f"not a document converted to markdown: {media_type(message.content_type) or 'no content type'}")
        if kind != "html":
            return [await self._document(message, kind)]
        source = message.metadata
        url = source.get("final_url") or source.get("url")
        markdown, words, markdown_hash, title, language, code_languages, method, region, kept, canonical, minhash = await self._pool.run(
            extract_in_worker, message.body, message.content_type, url, self.config.preserve_links, self.config.preserve_images
        )
        if not words:
            raise SkipMessage("no main content found on the page")
        return [
            Emit(
                body=markdown,
                content_type=MARKDOWN_CONTENT_TYPE,
                metadata={
                    "page_message_id": message.id,
                    "title": title or source.get("title"),
                    "language": language or source.get("language"),
                    "content_hash": markdown_hash,
                    "words": words,
                    "code_languages": code_languages or None,
                    "extraction": method,
                    "canonical_url": canonical,
                    "minhash": minhash,  # the dataset finds near-duplicate pages by it
                    "structure": describe_structure(region, kept) if region else None,
                    "structure_lost": describe_losses(region, kept) if region else None,
                },
            )
        ]

    async def _document(self, message: Message, kind: str) -> Emit:
        """A document that is not HTML (document_markdown.py), converted in a worker as pages are."""
        source = message.metadata
        url = source.get("final_url") or source.get("url")
        name = urlsplit(url).path.rsplit("/", 1)[-1] or None if url else None
        body = message.body if kind == "pdf" else message.text()
        markdown, title, extraction, extra, minhash = await self._pool.run(document_in_worker, kind, body, name, self.config.max_pdf_pages)
        if markdown is None:
            raise PermanentError(title)  # the reason the document could not be read
        if not markdown.strip() or (kind == "pdf" and len(markdown.split()) <= len((title or "").split()) + 1):
            raise SkipMessage(f"no text in the {kind} document (a scanned PDF holds images, not text)")
        return Emit(
            body=markdown,
            content_type=MARKDOWN_CONTENT_TYPE,
            metadata={
                "page_message_id": message.id,
                "title": title or source.get("title"),
                "language": source.get("language"),
                "content_hash": content_hash(markdown.encode()),
                "words": len(markdown.split()),
                "extraction": extraction,
                "minhash": minhash,
                **extra,
            },
        )


def document_kind(content_type: str) -> str | None:
    """html, markdown, text or pdf: how a stored document of this type becomes markdown."""
    media = media_type(content_type)
    if media in ("text/html", "application/xhtml+xml"):
        return "html"
    if media in MARKDOWN_TYPES:
        return "markdown"
    if media in TEXT_TYPES:
        return "text"
    if media in PDF_TYPES:
        return "pdf"
    return None
