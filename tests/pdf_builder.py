"""Small text PDFs for tests: pages of lines in Helvetica, bookmarks, a title (pypdf writes them)."""

from __future__ import annotations

import io

from pypdf import PdfWriter
from pypdf.generic import ContentStream, DictionaryObject, NameObject


def _escaped(line: str) -> str:
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def text_pdf(pages: list[list[str]], bookmarks: list[tuple[str, int, str | None]] = (), title: str | None = None, password: str | None = None) -> bytes:
    """`bookmarks`: (title, page index, parent bookmark's title or None), in order."""
    writer = PdfWriter()
    font = DictionaryObject(
        {NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"), NameObject("/BaseFont"): NameObject("/Helvetica")}
    )
    for lines in pages:
        page = writer.add_blank_page(612, 792)
        shown = " ".join(f"({_escaped(line)}) '" for line in lines)
        content = ContentStream(None, None)
        content.set_data(f"BT /F1 11 Tf 14 TL 72 740 Td {shown} ET".encode("latin-1"))
        page.replace_contents(content)
        page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})})
    made = {}
    for name, page_index, parent in bookmarks:
        made[name] = writer.add_outline_item(title=name, page_number=page_index, parent=made.get(parent))
    if title:
        writer.add_metadata({"/Title": title})
    if password:
        writer.encrypt(password)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
