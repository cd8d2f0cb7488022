"""`smart_segmenter`: a page's markdown becomes token-bounded segments, one message each.

Cutting follows the markdown's structure (markdown_segments.py). Each segment's sidecar says
where it sits: its heading path, its position among the page's segments, the lines of the page's
markdown it covers and its token count, plus the page's message id and title, so a segment found
by a search leads back to its page and URL. Parsing and counting tokens take a few milliseconds a
page of pure CPU, which the run's one event loop (shared by every stage while they stream) would
spend instead of fetching and storing, so they run in worker processes, each with the tokenizer
loaded once as it starts.
"""

from __future__ import annotations

import asyncio

from pydantic import Field, model_validator

from ..extraction.documents import MARKDOWN_CONTENT_TYPE
from ..extraction.page_conversion import segment_in_worker
from ..extraction.tokens import ENCODING, encoding
from ..ids import slug_of
from ..workers.process_pool import WorkerPool, default_workers
from .base import Adapter, AdapterConfig, Emit, Message, SkipMessage


class SmartSegmenterConfig(AdapterConfig):
    max_tokens: int = Field(512, ge=16, le=32768, description=f"Largest segment, in {ENCODING} tokens.")
    min_tokens: int = Field(64, ge=0, description="Segments smaller than this merge into a neighbour when both fit.")
    overlap_tokens: int = Field(
        0, ge=0, description="Each segment opens with up to this many tokens from the end of the one before it in its section."
    )
    workers: int | None = Field(None, ge=1, le=32, description="Worker processes; default: CPU count, at most 4.")
    timeout: float = Field(60.0, gt=0, le=600, description="Seconds one page may take before it fails.")

    @model_validator(mode="after")
    def _min_below_max(self) -> SmartSegmenterConfig:
        if self.min_tokens >= self.max_tokens:
            raise ValueError(f"min_tokens ({self.min_tokens}) must be smaller than max_tokens ({self.max_tokens})")
        if self.overlap_tokens * 2 > self.max_tokens:
            raise ValueError(f"overlap_tokens ({self.overlap_tokens}) must be at most half of max_tokens ({self.max_tokens})")
        return self


class SmartSegmenter(Adapter[SmartSegmenterConfig]):
    type = "smart_segmenter"
    config_model = SmartSegmenterConfig

    worker_modules = ("factflow_assets.extraction.markdown_segments",)

    async def open(self) -> None:
        # each worker loads the byte-pair ranks (~0.4 s) as it starts, before the first message
        self._pool = WorkerPool(self.config.workers or default_workers(), self.config.timeout, list(self.worker_modules), initializer=encoding)
        await self._pool.start()

    async def close(self) -> None:
        await asyncio.to_thread(self._pool.close)

    async def process(self, message: Message) -> list[Emit]:
        markdown = message.text()
        if not markdown.strip():
            raise SkipMessage("empty markdown")
        config = self.config
        segments = await self._pool.run(segment_in_worker, markdown, config.max_tokens, config.min_tokens, config.overlap_tokens)
        slug = slug_of(message.id) or "segment"
        source = message.metadata
        return [
            Emit(
                body=text,
                content_type=MARKDOWN_CONTENT_TYPE,
                identity=f"{message.id}#{index}",
                slug=f"{slug}-{index:03d}",
                metadata={
                    "page_message_id": source.get("page_message_id"),
                    "title": source.get("title"),
                    "language": source.get("language"),
                    "heading_path": heading_path,
                    "heading": " > ".join(heading_path) or None,
                    "segment_index": index,
                    "segment_count": len(segments),
                    "line_start": line_start,
                    "line_end": line_end,
                    "tokens": tokens,
                    "overlap_tokens": overlap or None,
                    "encoding": ENCODING,
                },
            )
            for index, (text, heading_path, line_start, line_end, tokens, overlap) in enumerate(segments)
        ]
