"""The dataset's two tables, as an index takes them: one row per page, one row per segment.

Ids are stable across executions, so an index can apply a re-crawl's changes by id: a page's id
comes from its URL (the one the crawl asked for), a segment's from its page's id and its position
in the page. Text is the markdown (a page's whole, or the segment's); `content_hash` is the
SHA-256 of that text, so "changed" means the text changed.
"""

from __future__ import annotations

import hashlib

import pyarrow as pa

#: Where an execution's dataset is kept (beside its routes' objects).
DATASET_FOLDER = "dataset"
SEGMENTS = "segments"
PAGES = "pages"
WHAT = (SEGMENTS, PAGES)

_COMMON = [
    pa.field("url", pa.string(), nullable=False, metadata={"doc": "the URL the crawl asked for"}),
    pa.field("final_url", pa.string(), metadata={"doc": "where it answered, after redirects"}),
    pa.field("canonical_url", pa.string(), metadata={"doc": "the page's <link rel=canonical>, when it has one"}),
    pa.field("title", pa.string()),
    pa.field("language", pa.string()),
]
_DUPLICATE = pa.field(
    "duplicate_of", pa.string(), metadata={"doc": "the id of the page this one repeats (null for a page kept): left out of exports unless asked for"}
)
_PROVENANCE = [
    pa.field("fetched_at", pa.string(), metadata={"doc": "ISO 8601, when the page was fetched"}),
    pa.field("lastmod", pa.string(), metadata={"doc": "the sitemap's lastmod, or the Last-Modified header"}),
    pa.field("http_status", pa.int32()),
    pa.field("execution_id", pa.string(), nullable=False),
    pa.field("lineage_id", pa.string(), nullable=False, metadata={"doc": "the row that wrote it: factflow lineage get ID"}),
    pa.field("message_id", pa.string(), nullable=False),
]

SEGMENT_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False, metadata={"doc": "<page id>-<segment index, 4 digits>"}),
        pa.field("page_id", pa.string(), nullable=False),
        *_COMMON,
        pa.field("heading_path", pa.list_(pa.string()), nullable=False, metadata={"doc": "the headings above the segment, outermost first"}),
        pa.field("text", pa.string(), nullable=False, metadata={"doc": "the segment's markdown"}),
        pa.field("tokens", pa.int32(), metadata={"doc": "cl100k_base tokens of text"}),
        pa.field("segment_index", pa.int32(), nullable=False),
        pa.field("segment_count", pa.int32(), nullable=False),
        pa.field("content_hash", pa.string(), nullable=False, metadata={"doc": "SHA-256 of text"}),
        pa.field("page_content_hash", pa.string(), metadata={"doc": "SHA-256 of the page's markdown"}),
        _DUPLICATE,
        *_PROVENANCE,
    ]
)

PAGE_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False, metadata={"doc": "SHA-256 of the URL, first 32 hex digits"}),
        *_COMMON,
        pa.field("text", pa.string(), nullable=False, metadata={"doc": "the page's markdown"}),
        pa.field("words", pa.int32()),
        pa.field("content_hash", pa.string(), nullable=False, metadata={"doc": "SHA-256 of text"}),
        pa.field("html_hash", pa.string(), metadata={"doc": "SHA-256 of the page as fetched"}),
        pa.field("extraction", pa.string(), metadata={"doc": "region (the page's marked main content) or article (boilerplate detection)"}),
        _DUPLICATE,
        pa.field("duplicate_kind", pa.string(), metadata={"doc": "canonical, exact or near, when duplicate_of is set"}),
        *_PROVENANCE,
    ]
)

SCHEMAS = {SEGMENTS: SEGMENT_SCHEMA, PAGES: PAGE_SCHEMA}


def page_id(url: str) -> str:
    """A page's stable id: the same URL gives the same id in every execution."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:32]


def segment_id(page: str, index: int) -> str:
    return f"{page}-{index:04d}"


def dataset_key(execution_id: str, what: str) -> str:
    return f"executions/{execution_id}/{DATASET_FOLDER}/{what}.parquet"


def describe_schema(schema: pa.Schema) -> str:
    """One line per column: name, type, and what it holds (for the materialisation's metadata)."""
    lines = []
    for field in schema:
        doc = (field.metadata or {}).get(b"doc", b"").decode()
        lines.append(f"{field.name}: {field.type}{'' if field.nullable else ' (always set)'}{f' — {doc}' if doc else ''}")
    return "\n".join(lines)
