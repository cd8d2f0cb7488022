"""What html_to_markdown's and smart_segmenter's worker processes run: a stored page, or a
document that is not HTML, to markdown and what its sidecar says of it; a page's markdown to
segments; as plain tuples.

The stage's own process hands bytes over and gets bytes back: it neither decodes the page nor
encodes the markdown. The extractor's and the segmenter's libraries (trafilatura, markdown-it...)
are imported inside the functions, so the stage's process, which imports this module to name
them, never loads them, not even to unpickle a result; the workers have them preloaded (the
adapters' `worker_modules`).
"""

from __future__ import annotations

from resources.hashing import content_hash

from .documents import canonical_url, decode_text


def document_in_worker(kind: str, body: bytes | str, name: str | None, max_pages: int) -> tuple:
    """Runs in a worker process: a document that is not HTML as (markdown, title, extraction,
    sidecar extras, shingle signature); a PDF that cannot be read as its reason."""
    from .document_markdown import UnreadableDocument, markdown_document, pdf_document, text_document
    from .text_signature import shingle_signature

    try:
        if isinstance(body, bytes):  # a PDF, read from its bytes
            converted = pdf_document(body, max_pages)
        elif kind == "markdown":
            converted = markdown_document(body)
        else:
            converted = text_document(body, name)
    except UnreadableDocument as error:
        return None, str(error), kind, {}, None
    return converted.markdown, converted.title, converted.extraction, converted.extra, shingle_signature(converted.markdown)


def extract_in_worker(body: bytes, content_type: str, url: str | None, preserve_links: bool, preserve_images: bool) -> tuple:
    """Runs in a worker process: the stored page decoded (as `Message.text` does), its extraction
    and what the sidecar says of it, as a plain tuple (markdown as UTF-8, its words and hash, title,
    language, code languages, how it was found, what the region held, what the markdown kept, the
    canonical URL, the shingle signature). The stage's own process hands bytes over and gets bytes
    back: it neither decodes the page nor encodes the markdown, and never imports the extractor's
    libraries, not even to unpickle a result."""
    from .markdown_extraction import extract_markdown
    from .text_signature import shingle_signature

    html = decode_text(body, content_type)
    e = extract_markdown(html, url, preserve_links, preserve_images)
    markdown = e.markdown.encode()
    return (markdown, len(e.markdown.split()), content_hash(markdown), e.title, e.language, e.code_languages, e.method,
            e.region_counts, e.markdown_counts, canonical_url(html, url), shingle_signature(e.markdown))


def segment_in_worker(markdown: str, max_tokens: int, min_tokens: int, overlap_tokens: int) -> list[tuple]:
    """Runs in a worker process: the page's markdown as segments, each (text, heading path, first
    line, end line, tokens, overlap tokens)."""
    from .markdown_segments import segment_markdown

    return [
        (s.text, s.heading_path, s.line_start, s.line_end, s.tokens, s.overlap_tokens)
        for s in segment_markdown(markdown, max_tokens, min_tokens, overlap_tokens)
    ]
