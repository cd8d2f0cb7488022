"""smart_segmenter: segments follow headings, stay within max_tokens and keep code and tables whole."""

from __future__ import annotations

import gzip

import pytest
from conftest import require_corpus

from benchmarks.corpora import AEB_DEV
from factflow_assets.adapters import Message
from factflow_assets.config import validate_text
from factflow_assets.extraction.documents import decode_html
from factflow_assets.extraction.markdown_extraction import extract_markdown
from factflow_assets.extraction.markdown_segments import segment_markdown
from factflow_assets.extraction.tokens import count_tokens, encoding
from tests.adapter_harness import run_adapter

PARAGRAPH = "The harbour wall protects the moorings from the winter swell, and it needs repair. "


def doc(*parts: str) -> str:
    return "\n\n".join(parts) + "\n"


def test_tokens_are_counted_offline_with_cl100k():
    assert encoding().encode("hello world") == [15339, 1917]  # cl100k_base's ids for these words
    assert count_tokens("<|endoftext|>") > 1  # special-token text is plain text here


def test_sections_become_segments_with_heading_paths_and_line_ranges():
    markdown = doc("Intro " + PARAGRAPH * 3, "# Guide", PARAGRAPH * 3, "## Install", PARAGRAPH * 3, "### On Linux", PARAGRAPH * 3, "## Use", PARAGRAPH * 3)
    segments = segment_markdown(markdown, max_tokens=200, min_tokens=10)
    assert [s.heading_path for s in segments] == [[], ["Guide"], ["Guide", "Install"], ["Guide", "Install", "On Linux"], ["Guide", "Use"]]
    lines = markdown.split("\n")
    for segment in segments:  # each segment is exactly the lines of the page it says it covers
        assert segment.text == "\n".join(lines[segment.line_start : segment.line_end]).strip("\n")
        assert segment.tokens == count_tokens(segment.text)
    assert segments[2].text.startswith("## Install")


def test_small_neighbours_merge_and_nothing_exceeds_max_tokens():
    markdown = doc("# A", "Short.", "## B", "Also short.", "## C", PARAGRAPH * 20, "## D", "Tail.")
    segments = segment_markdown(markdown, max_tokens=120, min_tokens=30)
    assert all(s.tokens <= 120 for s in segments)
    assert segments[0].text.startswith("# A") and "## B" in segments[0].text  # A and B merged
    assert segments[0].heading_path == ["A"]
    assert segments[-1].text.endswith("Tail.") and segments[-1].text.count("harbour") > 0  # D joined the end of C
    for left, right in zip(segments, segments[1:]):  # a small segment left alone had no room next to it
        if min(left.tokens, right.tokens) < 30:
            assert count_tokens(left.text + "\n\n" + right.text) > 120


def test_a_code_block_is_never_cut_when_it_fits_and_split_between_lines_when_it_does_not():
    small_code = "```python\n" + "\n".join(f"value_{i} = {i}" for i in range(10)) + "\n```"
    markdown = doc("## Code", PARAGRAPH * 4, small_code, PARAGRAPH * 4)
    for segment in segment_markdown(markdown, max_tokens=150, min_tokens=0):
        assert segment.text.count("```") in (0, 2)
    assert any(small_code in s.text for s in segment_markdown(markdown, max_tokens=150, min_tokens=0))

    big_code = "```python\n" + "\n".join(f"value_{i} = compute({i}, scale=2)" for i in range(200)) + "\n```"
    parts = [s.text for s in segment_markdown(doc(big_code), max_tokens=100, min_tokens=0)]
    assert len(parts) > 1
    body_lines = []
    for part in parts:
        lines = part.split("\n")
        assert lines[0] == "```python" and lines[-1] == "```" and count_tokens(part) <= 100
        body_lines += lines[1:-1]
    assert body_lines == big_code.split("\n")[1:-1]  # every line once, none cut


def test_a_long_table_is_split_between_rows_with_its_header_repeated():
    header = "| Name | Value |\n|---|---|"
    rows = [f"| setting_{i} | {i * 7} |" for i in range(120)]
    parts = [s.text for s in segment_markdown(doc(header + "\n" + "\n".join(rows)), max_tokens=120, min_tokens=0)]
    assert len(parts) > 1
    seen = []
    for part in parts:
        assert part.startswith(header + "\n") and count_tokens(part) <= 120
        seen += part.split("\n")[2:]
    assert seen == rows


def test_one_huge_paragraph_is_cut_at_sentences():
    parts = segment_markdown(doc(PARAGRAPH * 40), max_tokens=60, min_tokens=0)
    assert len(parts) > 1 and all(p.tokens <= 60 for p in parts)
    assert all(p.text.endswith("repair.") for p in parts)


def test_the_adapter_emits_one_message_per_segment_linked_to_the_page():
    markdown = doc("## One", PARAGRAPH * 10, "## Two", PARAGRAPH * 10)
    meta = {"page_message_id": "docs-page-0123456789abcdef", "title": "Harbour", "language": "en", "url": "https://example.com/harbour"}
    message = Message("docs-page-fedcba9876543210", markdown.encode(), "text/markdown; charset=utf-8", meta)
    emits = run_adapter("smart_segmenter", message, {"max_tokens": 200, "min_tokens": 20})
    assert len(emits) == 2 and len({e.identity for e in emits}) == 2
    assert [e.slug for e in emits] == ["docs-page-000", "docs-page-001"]
    first = emits[0].metadata
    assert first["heading_path"] == ["One"] and first["segment_index"] == 0 and first["segment_count"] == 2
    assert first["page_message_id"] == meta["page_message_id"] and first["title"] == "Harbour"
    assert first["tokens"] <= 200 and first["line_start"] == 0


@pytest.mark.parametrize("config, path", [("max_tokens: 100\n          min_tokens: 100", "min_tokens"), ("max_tokens: 4", "max_tokens")])
def test_bad_segmenter_config_is_reported_with_its_path(config, path):
    text = f"""\
version: 1
routes:
  - name: split
    adapters:
      - type: smart_segmenter
        config:
          {config}
init_message:
  route: split
  payload: {{}}
"""
    findings = validate_text(text, "p").errors
    assert findings and findings[0].code == "E201"  # an invalid value
    assert "routes[0].adapters[0].config" in findings[0].path
    assert path in findings[0].message or path in findings[0].path


CORPUS = AEB_DEV


@pytest.mark.parametrize("max_tokens", [64, 512])
def test_real_pages_give_segments_within_max_tokens_with_exact_counts(max_tokens):
    """Packing counts a join exactly only when the parts' sum says it may not fit: on real pages
    every segment still holds at most max_tokens, and its recorded count is its exact count."""
    require_corpus(CORPUS)
    pages = sorted((CORPUS / "html").glob("*.html.gz"))[:30]
    for page in pages:
        markdown = extract_markdown(decode_html(gzip.decompress(page.read_bytes()), "text/html")).markdown
        segments = segment_markdown(markdown, max_tokens=max_tokens, min_tokens=max_tokens // 8)
        assert segments, page.name
        for segment in segments:
            assert segment.tokens == count_tokens(segment.text) <= max_tokens, (page.name, segment.line_start)


def test_code_inside_a_list_item_is_kept_whole_or_split_as_code_with_its_fences():
    code = "\n".join(f"    value_{i} = compute({i}, scale=2)" for i in range(120))
    item = f"- Step one runs this:\n\n  ```python\n{code.replace('    ', '  ', 1)}\n  ```\n- Step two."
    markdown = doc("## Steps", PARAGRAPH * 3, item)
    segments = segment_markdown(markdown, max_tokens=150, min_tokens=0)
    assert len(segments) > 2
    for segment in segments:
        assert segment.tokens == count_tokens(segment.text) <= 150
        assert segment.text.count("```") % 2 == 0, segment.text  # no fence left open, none closed twice
    assert any(s.text.endswith("- Step two.") for s in segments)


def test_overlap_repeats_the_end_of_the_segment_before_within_the_bound():
    sentences = [f"Sentence number {i} says one more thing about the harbour wall." for i in range(60)]
    markdown = doc("## Wall", "\n".join(sentences), "## Other", PARAGRAPH)
    plain = segment_markdown(markdown, max_tokens=120, min_tokens=0)
    overlapped = segment_markdown(markdown, max_tokens=120, min_tokens=0, overlap_tokens=30)
    assert [s.overlap_tokens for s in plain] == [0] * len(plain)
    wall = [s for s in overlapped if s.heading_path == ["Wall"]]
    assert len(wall) > 2 and wall[0].overlap_tokens == 0
    for before, after in zip(wall, wall[1:]):
        assert 0 < after.overlap_tokens <= 30 and after.tokens == count_tokens(after.text) <= 120
        repeated = after.text.split("\n\n")[0]  # the overlap: whole lines from the end of the one before
        assert before.text.endswith(repeated) and count_tokens(repeated) == after.overlap_tokens
    other = next(s for s in overlapped if s.heading_path == ["Other"])
    assert other.overlap_tokens == 0  # no overlap across sections


def test_a_bad_overlap_is_refused():
    findings = validate_text(
        "version: 1\nroutes:\n  - name: split\n    adapters:\n      - type: smart_segmenter\n        config: {max_tokens: 100, min_tokens: 10, overlap_tokens: 60}\n"  # noqa: E501
        "init_message:\n  route: split\n  payload: {}\n",
        "p",
    ).errors
    assert findings and "overlap_tokens" in findings[0].message


@pytest.mark.slow
@pytest.mark.parametrize("max_tokens", [128, 512])
def test_documentation_pages_give_bounded_balanced_segments_with_heading_paths(max_tokens):
    """The docs corpus's markdown (code in lists and definitions, long tables, API references)
    segmented: never over the bound, every fence balanced, and a heading path on nearly all."""
    from benchmarks.corpora import CORPORA
    from benchmarks.docs_fidelity import SITE_ROOT, load_pages

    corpus = require_corpus(CORPORA / "docs-dev")
    with_path = total = 0
    for site, path, html in load_pages(corpus, None)[::3]:
        markdown = extract_markdown(html, SITE_ROOT.format(site=site) + path).markdown
        for segment in segment_markdown(markdown, max_tokens=max_tokens, min_tokens=max_tokens // 8, overlap_tokens=max_tokens // 8):
            assert segment.tokens == count_tokens(segment.text) <= max_tokens, (site, path, segment.line_start)
            fences = [line for line in segment.text.split("\n") if line.lstrip().startswith(("```", "~~~"))]
            assert len(fences) % 2 == 0, (site, path, segment.text[:200])
            total += 1
            with_path += bool(segment.heading_path)
    assert with_path >= 0.95 * total


def test_the_run_process_loads_none_of_the_workers_libraries():
    """The stages' process names the workers' tasks (extraction/page_conversion.py) without loading
    what they run: markdown-it, trafilatura and Resiliparse are the workers' (each import costs
    every execution's start tens of milliseconds)."""
    from conftest import modules_loaded_after

    code = "import factflow_assets.operations.launch, factflow_assets.adapters"
    assert modules_loaded_after(code, ("markdown_it", "trafilatura", "resiliparse")) == []
