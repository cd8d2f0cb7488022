"""Documents that are not HTML become markdown: plain text verbatim, markdown as written, PDF by
page with its bookmarks as headings; what cannot be read says why."""

from __future__ import annotations

import pytest
from e2e_harness import as_json, rows
from pdf_builder import text_pdf

from factflow_assets.demo.server import Resource, SiteServer
from factflow_assets.extraction.document_markdown import UnreadableDocument, markdown_document, pdf_document, text_document

MANUAL = [
    ["Widget Manual", "Installation", "Run the installer (setup.exe) and follow it.", "# not a heading", "> not a quote"],
    ["Configuration", "Set the port to 8080 in widget.conf.", "Advanced options", "Use --verbose for more."],
]
BOOKMARKS = [("Installation", 0, None), ("Configuration", 1, None), ("Advanced options", 1, "Configuration")]


def test_a_pdf_becomes_its_pages_text_with_its_bookmarks_as_headings():
    converted = pdf_document(text_pdf(MANUAL, BOOKMARKS, title="Widget Manual"), max_pages=100)
    lines = converted.markdown.split("\n")
    assert converted.title == "Widget Manual" and lines[0] == "# Widget Manual"
    assert converted.markdown.count("Widget Manual") == 1  # the printed title is the heading, not a line more
    assert [line for line in lines if line.startswith("#")] == ["# Widget Manual", "## Installation", "## Configuration", "### Advanced options"]
    assert "\\# not a heading" in lines and "\\> not a quote" in lines  # the PDF's text stays text
    assert converted.extra["pages"] == 2
    second = converted.extra["page_lines"][1]
    assert lines[second:].index("## Configuration") < 3 and "Set the port to 8080 in widget.conf." in lines[second:]
    assert "Set the port" not in "\n".join(lines[:second])


def test_a_pdf_without_bookmarks_a_locked_one_and_a_broken_one():
    plain = pdf_document(text_pdf([["Just text on one page."]]), max_pages=100)
    assert plain.title is None and "Just text on one page." in plain.markdown
    assert pdf_document(text_pdf([["one"], ["two"], ["three"]]), max_pages=2).extra == {"pages": 2, "page_count": 3, "page_lines": [0, 2]}
    with pytest.raises(UnreadableDocument, match="password"):
        pdf_document(text_pdf([["secret"]], password="pw"), max_pages=10)
    with pytest.raises(UnreadableDocument, match="cannot be read"):
        pdf_document(b"%PDF-1.7\nthis is not a pdf", max_pages=10)


def test_text_is_fenced_verbatim_and_markdown_kept():
    text = text_document("# not a heading\r\n    indented ``` fence\r\n", "notes.txt")
    assert text.markdown == "````text\n# not a heading\n    indented ``` fence\n````\n" and text.title == "notes.txt"
    md = markdown_document("\ufeffIntro\n\n# Real Title\n\nBody *kept*.\n")
    assert md.title == "Real Title" and md.markdown == "Intro\n\n# Real Title\n\nBody *kept*.\n"


@pytest.mark.slow
@pytest.mark.backends
def test_a_pdf_a_text_file_and_a_markdown_file_on_a_site_become_markdown_and_segments(pipelines, env):
    db, store = env
    pipelines(content_types=("text/html", "text/plain", "text/markdown", "application/pdf", "image/png"))
    pdf = text_pdf([[*MANUAL[0], *(f"Step {n}: do the thing number {n} carefully." for n in range(30))], MANUAL[1]], BOOKMARKS, title="Widget Manual")
    urls = ["/manual.pdf", "/CHANGES.txt", "/guide.md", "/logo.png"]
    listing = "".join(f"<url><loc>{{{{base_url}}}}{u}</loc></url>" for u in urls)
    routes = {
        "/sitemap.xml": Resource(f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{listing}</urlset>'.encode(), "application/xml"),
        "/manual.pdf": Resource(pdf, "application/pdf"),
        "/CHANGES.txt": Resource("Release 2.1\n  * fixed the frobnicator\n  * faster café lookups\n".encode("latin-1"), "text/plain; charset=iso-8859-1"),
        "/guide.md": Resource(b"# Guide\n\nRead **this** first.\n\n## Next\n\nThen that.\n", "text/markdown"),
        "/logo.png": Resource(b"\x89PNG\r\n\x1a\n", "image/png"),
    }
    with SiteServer(routes) as site:
        execution = as_json("execution", "start", "site_md", "--set", f"sitemap_url={site.url('/sitemap.xml')}")
    assert execution["status"] == "completed"
    converted = {r["metadata"]["url"].rsplit("/", 1)[1]: r for r in rows(db, execution["id"], "html_to_markdown")}
    assert converted["logo.png"]["status"] == "skipped" and "image/png" in converted["logo.png"]["error_message"]
    markdown = {name: store.get(row["output_keys"][0]).decode() for name, row in converted.items() if row["status"] == "completed"}
    assert set(markdown) == {"manual.pdf", "CHANGES.txt", "guide.md"}
    assert markdown["CHANGES.txt"].startswith("```text\nRelease 2.1\n") and "faster café lookups" in markdown["CHANGES.txt"]
    assert markdown["guide.md"].startswith("# Guide\n\nRead **this** first.")
    assert "## Configuration" in markdown["manual.pdf"]
    sidecar = store.metadata(converted["manual.pdf"]["output_keys"][0])
    assert sidecar["extraction"] == "pdf" and sidecar["pages"] == 2 and sidecar["title"] == "Widget Manual" and len(sidecar["page_lines"]) == 2
    segments = [store.metadata(key) for r in rows(db, execution["id"], "smart_segmenter") for key in r["output_keys"]]
    assert any(s["heading_path"][-1:] == ["Advanced options"] for s in segments)  # the bookmarks are the segments' context
