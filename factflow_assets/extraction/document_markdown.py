"""Documents that are not HTML, as markdown: plain text, markdown, PDF.

Documentation sites link specifications, changelogs and man pages as `.txt`, guides as `.md`, and
papers and manuals as PDF; they are content like any page.

- `text/markdown` is already markdown: kept as written (line ends and a byte-order mark aside);
  its title is its first heading.
- `text/plain` is kept verbatim in one fence (` ```text `): its line breaks and indentation are its
  layout, and markdown read into it (a line opening with `#` or `*`) would change what it says.
- PDF (pypdf): the text of each page in page order, each page's lines as the PDF lays them out;
  the PDF's outline (its bookmarks), when it has one, gives the headings, placed where each
  entry's page starts (on the entry's own line when the page holds it). The sidecar gets the page
  count and the markdown line (0-based, as a segment's `line_start`) each page starts on, so a
  segment's lines say its pages. An
  encrypted PDF that opens without a password is read; another fails saying so. At most
  `max_pages` pages are read.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

MARKDOWN_TYPES = ("text/markdown", "text/x-markdown")
TEXT_TYPES = ("text/plain",)
PDF_TYPES = ("application/pdf", "application/x-pdf")
_ATX_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
#: What would read as markdown at the start of a PDF line: a heading, a quote, a fence.
_LEADING_MARKUP = re.compile(r"^(\s*)([#>]|```|~~~)")


@dataclass
class Converted:
    markdown: str
    title: str | None
    extraction: str  # markdown, text, pdf
    extra: dict = field(default_factory=dict)  # for the sidecar (a PDF's pages and page_lines)


class UnreadableDocument(ValueError):
    """The document cannot be read (a PDF that is damaged or needs a password)."""


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def markdown_document(text: str) -> Converted:
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    heading = _ATX_HEADING.search(text)
    return Converted(text.strip() + "\n", heading.group(1).strip() if heading else None, "markdown")


def text_document(text: str, name: str | None) -> Converted:
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").strip("\n")
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", text)), default=0))
    return Converted(f"{fence}text\n{text}\n{fence}\n", name, "text")


def pdf_document(data: bytes, max_pages: int) -> Converted:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadableDocument("the PDF is encrypted and needs a password")
        headings = _outline(reader)
        info = reader.metadata
        title = (info.title or "").strip() if info is not None and info.title else None
        pages = reader.pages[:max_pages]
        lines: list[str] = []
        page_lines: list[int] = []
        for number, page in enumerate(pages):
            page_lines.append(len(lines))
            text = page.extract_text() or ""
            if number == 0 and title:  # the title printed on the first page is the markdown's heading
                text = "\n".join(line for line in text.split("\n") if " ".join(line.split()) != title)
            lines.extend(_page_lines(text, headings.get(number, [])))
            lines.append("")
    except (PdfReadError, KeyError, ValueError, TypeError) as error:
        if isinstance(error, UnreadableDocument):
            raise
        raise UnreadableDocument(f"the PDF cannot be read: {error}") from None
    title = title or next((text for entries in headings.values() for _level, text in entries), None)
    opening = [f"# {title}", ""] if title else []
    page_lines = [line + len(opening) for line in page_lines]
    markdown = "\n".join(opening + lines).rstrip() + "\n"
    return Converted(markdown, title, "pdf", {"pages": len(pages), "page_count": len(reader.pages), "page_lines": page_lines})


def _outline(reader) -> dict[int, list[tuple[int, str]]]:
    """{page index: [(depth, title), ...]} of the PDF's bookmarks, in outline order."""
    found: dict[int, list[tuple[int, str]]] = {}

    def walk(items, depth: int) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item, depth + 1)
                continue
            try:
                page = reader.get_destination_page_number(item)
            except Exception:  # noqa: BLE001 - a bookmark to nowhere names no page: left out
                continue
            title = " ".join(str(item.title or "").split())
            if title and page is not None and page >= 0:
                found.setdefault(page, []).append((depth, title))

    try:
        walk(reader.outline, 0)
    except Exception:  # noqa: BLE001 - a damaged outline: the text without headings
        return {}
    return found


def _page_lines(text: str, headings: list[tuple[int, str]]) -> list[str]:
    """A page's lines, markup at their start escaped, with its headings: on the line that holds
    a heading's text, else before the page's text."""
    lines = [_LEADING_MARKUP.sub(lambda m: m.group(1) + "\\" + m.group(2), line.rstrip()) for line in text.replace("\r", "").split("\n")]
    opening: list[str] = []
    for depth, title in headings:
        marker = "#" * min(depth + 2, 6) + " " + title
        at = next((i for i, line in enumerate(lines) if " ".join(line.split()) == title), None)
        if at is None:
            opening += [marker, ""]
        else:
            lines[at:at + 1] = ["", marker, ""]
    return opening + lines
