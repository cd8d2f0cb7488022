"""html_to_markdown: the markdown keeps the page's structure and drops what is around it.

The documentation-shaped cases (region, links, code, definition lists, admonitions, tables) are in
test_docs_markdown.py; here the fidelity fixture, the article path and the adapter."""

from __future__ import annotations

import hashlib
import os
import re
import time

import pytest
from conftest import require_corpus

from benchmarks.corpora import AEB_DEV
from factflow_assets.adapters import Message, PermanentError, SkipMessage
from factflow_assets.extraction.article_extraction import _Block, _judge_by_agreement
from factflow_assets.extraction.markdown_extraction import extract_markdown
from factflow_assets.workers.process_pool import WorkerPool
from tests.adapter_harness import run_adapter
from tests.conftest import FIXTURES

FIDELITY = (FIXTURES / "markdown" / "fidelity.html").read_text()
CORPUS = AEB_DEV


@pytest.fixture(scope="module")
def fidelity():
    return extract_markdown(FIDELITY)


def test_headings_emphasis_and_links_are_kept_and_the_headline_is_the_title(fidelity):
    md = fidelity.markdown
    assert fidelity.title == "Configuring the pump" and fidelity.language == "en" and fidelity.method == "region"
    assert md.startswith("# Configuring the pump\n")  # the h1 stays, at its level, and is the title
    assert re.search(r"^## Settings$", md, re.M) and re.search(r"^## Steps$", md, re.M) and re.search(r"^### Example$", md, re.M)
    assert "*single*" in md and "**every**" in md
    assert "[reference](/docs/reference)" in md


def test_a_table_is_a_gfm_table_with_its_header(fidelity):
    table = [line for line in fidelity.markdown.splitlines() if line.startswith("|")]
    assert [cell.strip() for cell in table[0].strip("|").split("|")] == ["Name", "Default", "Meaning"]
    assert re.fullmatch(r"\| -{3,} \| -{3,} \| -{3,} \|", table[1])
    assert [cell.strip() for cell in table[2].strip("|").split("|")] == ["flow_rate", "12", "Litres per minute"] and len(table) == 4


def test_nested_lists_keep_their_nesting_and_numbering(fidelity):
    lines = fidelity.markdown.splitlines()
    assert "- Install the controller" in lines
    assert "  - Mount it on the wall" in lines and "  - Connect the sensor cable" in lines
    assert "1. First numbered step" in lines and "2. Second numbered step" in lines


def test_code_blocks_are_fenced_with_the_language_the_page_marks(fidelity):
    md = fidelity.markdown
    assert "```python\ndef flow(rate):\n    return rate * 60\n```" in md  # <code class="language-python">
    assert "```bash\npumpctl start --config /etc/pump.yaml\n```" in md  # <div class="highlight-bash"><pre>
    assert '```json\n{"flow_rate": 12, "pressure": 2.5}\n```' in md  # <pre data-lang="json">
    assert fidelity.code_languages == ["bash", "json", "python"]


def test_the_structure_is_counted_on_both_sides(fidelity):
    expected = {"code_blocks": 3, "tables": 1, "headings": 4, "list_items": 6, "links": 1}
    assert fidelity.region_counts == expected and fidelity.markdown_counts == expected


def test_images_are_kept_and_boilerplate_is_not(fidelity):
    md = fidelity.markdown
    assert "![Wiring diagram of the controller](/img/wiring.png)" in md
    for boilerplate in ("Home", "cookies", "Accept", "Copyright", "Privacy", "tracking", "an HTML comment"):
        assert boilerplate not in md


def test_links_and_images_can_be_left_out():
    md = extract_markdown(FIDELITY, preserve_links=False, preserve_images=False).markdown
    assert "See the reference for details." in md and "](" not in md and "![" not in md


def test_a_block_the_second_opinion_does_not_have_is_dropped_and_images_follow_their_text():
    article = "The council voted on Tuesday to extend the harbour wall by three hundred metres"
    teaser = "Ten gardening tips that will change the way you think about tomatoes forever"
    blocks = [
        _Block("text", [article]),
        _Block("image", ["![A map of the wall](/map.png)"]),
        _Block("text", [article.replace("Tuesday", "Monday")]),
        _Block("text", [teaser]),
        _Block("image", ["![Tomatoes](/tomato.png)"]),
        _Block("list", ["- Home page of the garden site"]),  # no links: a list item stays
        _Block("list", ["- [Sport](/sport) [Weather](/weather)"]),  # all links: judged as text
    ]
    reference = (article + " " + article.replace("Tuesday", "Monday")).split()
    _judge_by_agreement(blocks, reference)
    assert [b.keep for b in blocks] == [True, True, True, False, False, True, False]


def test_a_list_item_that_opens_with_an_image_is_judged_like_text():
    """A gallery's items are figures with captions, not bullets of the text: the list rule (kept
    unless mostly links) does not cover them."""
    article = "The council voted on Tuesday to extend the harbour wall by three hundred metres"
    blocks = [
        _Block("text", [article]),
        _Block("list", ["- ![](/g1.png) Functional areas of the module seen from the side of the hull"]),
        _Block("list", ["- Home page of the garden site"]),
    ]
    _judge_by_agreement(blocks, article.split())
    assert [b.keep for b in blocks] == [True, False, True]


def test_a_reference_that_missed_the_page_is_not_asked():
    blocks = [_Block("text", ["one two three four five six seven eight nine ten"])]
    _judge_by_agreement(blocks, ["one"])
    assert blocks[0].keep


def test_the_adapter_emits_markdown_with_title_language_hash_and_page_link():
    page = Message("docs-pump-0123456789abcdef", FIDELITY.encode(), "text/html; charset=utf-8", {"url": "https://example.com/pump", "title": "ignored"})
    (emit,) = run_adapter("html_to_markdown", page, {"workers": 1})
    body, content_type = emit.encoded()
    assert content_type == "text/markdown; charset=utf-8; variant=GFM"
    meta = emit.metadata
    assert meta["page_message_id"] == page.id and meta["title"] == "Configuring the pump" and meta["language"] == "en"
    assert meta["content_hash"] == hashlib.sha256(body).hexdigest() and meta["code_languages"] == ["bash", "json", "python"]
    assert meta["extraction"] == "region" and meta["structure_lost"] is None
    assert meta["structure"] == "code_blocks 3/3, tables 1/1, headings 4/4, list_items 6/6, links 1/1"
    # relative links and images resolve against the page's URL, so the markdown stands alone
    assert b"[reference](https://example.com/docs/reference)" in body and b"(https://example.com/img/wiring.png)" in body


def test_a_page_without_content_is_skipped_with_the_reason():
    empty = Message("empty-0123456789abcdef", b"<html><head><title>Soon</title></head><body><script>render()</script></body></html>", "text/html", {})
    (outcome,) = run_adapter("html_to_markdown", empty, {"workers": 1}, messages=[empty])
    assert isinstance(outcome, SkipMessage) and "no main content" in str(outcome)


def test_a_worker_that_hangs_or_dies_costs_one_message_and_the_pool_goes_on():
    import asyncio

    async def main():
        pool = WorkerPool(workers=1, timeout=1.0, preload=[])
        try:
            started = time.perf_counter()
            with pytest.raises(PermanentError, match="longer than 1 s"):
                await pool.run(time.sleep, 30)
            assert time.perf_counter() - started < 10  # killed, not waited for
            with pytest.raises(PermanentError, match="died"):
                await pool.run(os._exit, 3)
            return await pool.run(sum, [1, 2, 3])
        finally:
            pool.close()

    assert asyncio.run(main()) == 6


def test_an_extraction_worker_converts_a_page_without_importing_the_adapters():
    """Unpickling a task imports the module its function lives in: html_to_markdown's workers run
    functions of extraction/ (preloaded), so their first page does not import every adapter."""
    import asyncio

    from factflow_assets.adapters.html_to_markdown import HtmlToMarkdown
    from factflow_assets.extraction.page_conversion import extract_in_worker

    async def main():
        pool = WorkerPool(workers=1, timeout=60.0, preload=list(HtmlToMarkdown.worker_modules))
        try:
            converted = await pool.run(extract_in_worker, FIDELITY.encode(), "text/html; charset=utf-8", "http://example.test/pump", True, True)
            loaded = await pool.run(eval, "sorted(m for m in __import__('sys').modules if m.startswith('factflow_assets.adapters'))")
            return converted, loaded
        finally:
            pool.close()

    converted, loaded = asyncio.run(main())
    assert converted[0].startswith(b"# Configuring the pump\n") and converted[1] > 0
    assert loaded == []


def test_a_timeout_below_the_workers_start_fails_messages_not_the_adapter():
    """Starting workers (forkserver, preloaded imports) is not held to the per-message timeout:
    a timeout set too small costs each page a failure, and the adapter still opens."""
    # a page two hundred times the fidelity fixture takes a good part of a second to extract: a
    # millisecond's timeout fails it by a wide margin, however the machine is loaded
    big = FIDELITY.replace("</body>", "".join(f"<section><h2>Part {i}</h2>{FIDELITY}</section>" for i in range(200)) + "</body>")
    page = Message("p-0123456789abcdef", big.encode(), "text/html", {"url": "https://example.com/p"})
    outcomes = run_adapter("html_to_markdown", page, {"workers": 1, "timeout": 0.001}, messages=[page, page])
    assert all(isinstance(o, PermanentError) and "longer than" in str(o) for o in outcomes)


@pytest.mark.slow
def test_extraction_quality_on_the_gold_corpus_holds():
    """The benchmark's F1 (benchmarks/extraction_quality.py), as a guard against regressions."""
    require_corpus(CORPUS)
    from benchmarks.extraction_quality import factflow_extractor, load_corpus, score_side_by_side, summary

    scores = score_side_by_side(*load_corpus(CORPUS), {"factflow": factflow_extractor()}, rounds=1)
    result = summary(scores["factflow"])
    assert result["pages"] == 97 and result["f1"] >= 0.95, result


def test_a_caption_beside_its_image_is_not_taken_for_text_in_an_article():
    """A page that says it is an article (og:type) and holds no code goes to boilerplate
    detection. trafilatura's image mode keeps caption elements; the second opinion leaves them out
    by trafilatura's own rule for captions, so the image stays and its caption line does not."""
    paragraphs = "".join(
        f"<p>The harbour council met on day {i} to discuss the extension of the old sea wall and the cost of the new stones.</p>" for i in range(8)
    )
    caption = "Workers unloading granite blocks at the north pier during the storm season"
    html = (
        "<html><head><title>Harbour</title><meta property='og:type' content='article'></head><body><article><h1>The harbour wall</h1>"
        + paragraphs[: len(paragraphs) // 2]
        + f"<div class='wp-caption'><img src='/pier.jpg' alt='The north pier'><p class='wp-caption-text'>{caption}</p></div>"
        + paragraphs[len(paragraphs) // 2 :]
        + "</article></body></html>"
    )
    extraction = extract_markdown(html)
    assert extraction.method == "article"
    assert "![The north pier](/pier.jpg)" in extraction.markdown
    assert caption not in extraction.markdown


def test_a_helper_whose_parent_died_before_it_set_the_signal_exits_at_once():
    """The forkserver's first ~0.3 s (Python starting) come before it can ask to die with its
    parent: killed then, the parent left it behind. Named a parent that is not its own, it exits."""
    import subprocess
    import sys

    from factflow_assets.workers.worker_lifetime import FORKSERVER_PARENT

    probe = "import factflow_assets.workers.worker_lifetime; print('still here')"
    orphan = subprocess.run([sys.executable, "-c", probe], env={**os.environ, FORKSERVER_PARENT: "1"}, capture_output=True, text=True)
    assert orphan.returncode == 0 and orphan.stdout == ""
    own = subprocess.run([sys.executable, "-c", probe], env={**os.environ, FORKSERVER_PARENT: str(os.getpid())}, capture_output=True, text=True)
    assert own.stdout == "still here\n"
    environment = {k: v for k, v in os.environ.items() if k != FORKSERVER_PARENT}
    unrelated = subprocess.run([sys.executable, "-c", probe], env=environment, capture_output=True, text=True)
    assert unrelated.stdout == "still here\n"  # imported elsewhere, it is nobody's helper


#: How a page declared itself an article before the search was guided by each pattern's first word:
#: the one pattern, over the whole page, that `declares_article` must still agree with.
WHOLE_PAGE_DECLARATION = re.compile(
    r"""<meta\b[^>]*\b(?:property|name)\s*=\s*["']?og:type["']?[^>]*\bcontent\s*=\s*["']?[\w:.-]*article"""
    r"""|<meta\b[^>]*\bcontent\s*=\s*["']?[\w:.-]*article["']?[^>]*\b(?:property|name)\s*=\s*["']?og:type"""
    r"""|\barticle:published_time\b"""
    r'|"@type"\s*:\s*(?:\[[^\]]*)?"\w*(?:Article|BlogPosting)"',
    re.IGNORECASE,
)


@pytest.mark.parametrize(
    ("markup", "declares"),
    [
        ('<META Property="og:type" CONTENT="Article">', True),
        ("<meta content='video.article' name=og:type>", True),
        ('<meta property="og:type" content="website"><meta property="og:title" content="An article">', False),
        ('<meta property="article:published_time" content="2024-01-01">', True),
        ("<p>see xarticle:published_time_x</p>", False),
        ('{"@type": ["WebPage", "NewsArticle"]}', True),
        ('{"@type":"BlogPosting"}', True),
        ('{"@type": "Person", "name": "Article"}', False),
        ("<p>İstanbul: an article about og:type</p>", False),  # a letter whose lower case is longer
    ],
)
def test_an_article_is_known_by_what_its_markup_declares(markup, declares):
    from factflow_assets.extraction.markdown_extraction import declares_article

    html = f"<html><head>{markup}</head><body><p>text</p></body></html>"
    assert declares_article(html) is declares
    assert bool(WHOLE_PAGE_DECLARATION.search(html)) is declares


def test_the_declaration_is_read_as_the_whole_page_pattern_reads_it_on_real_pages():
    from benchmarks.site import DOCS_CORPUS, load_articles, load_docs_pages
    from factflow_assets.extraction.documents import decode_text
    from factflow_assets.extraction.markdown_extraction import declares_article

    require_corpus(CORPUS)
    require_corpus(DOCS_CORPUS)
    pages = [decode_text(page, "text/html") for page in load_articles() + load_docs_pages()]
    assert [declares_article(page) for page in pages] == [bool(WHOLE_PAGE_DECLARATION.search(page)) for page in pages]
    assert 0 < sum(map(declares_article, pages)) < len(pages)
