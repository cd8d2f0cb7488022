"""Documentation pages come out whole: the main region found, then converted faithfully.

Each case is a generic HTML shape documentation generators write (none is a copy of one site):
the region a page marks or the element around its h1, links relative to the page, code in lists
and definition lists, inline code that wraps a line, headings inside wrapper divs, permalinks,
admonitions, tables GFM cannot hold. The corpus test at the end holds the figures of
benchmarks/docs_fidelity.py on ../shared/corpora/docs-dev.
"""

from __future__ import annotations

import hashlib
import re

import pytest
from conftest import require_corpus
from markdown_it import MarkdownIt

from benchmarks.corpora import CORPORA
from factflow_assets.extraction.markdown_extraction import extract_markdown
from factflow_assets.extraction.region_markdown import tidy_markdown
from factflow_assets.extraction.structure_counts import describe_losses, markdown_structure, parse_structure

PAGE = "https://docs.example.org/3/library/functions.html"
_PARSER = MarkdownIt("commonmark").enable(["table"])


def page(body: str, head: str = "", sidebar: bool = True) -> str:
    """A documentation page: a header, a long navigation sidebar, `body` as its content, a footer."""
    navigation = "".join(f'<li><a href="/3/library/m{i}.html">Module number {i}</a></li>' for i in range(40))
    side = f'<div class="sphinxsidebar" role="navigation"><h3>Navigation</h3><ul>{navigation}</ul></div>' if sidebar else ""
    return (
        f"<!doctype html><html lang='en'><head><title>Built-in Functions — Docs</title>{head}</head><body>"
        "<div class='related'><a href='/3/index.html'>Home</a> | <a href='/3/genindex.html'>Index</a></div>"
        f"<div class='document'><div class='documentwrapper'>{body}</div>{side}</div>"
        "<div class='footer'>© Copyright 2001 the authors. Last updated on Jan 01, 2026.</div></body></html>"
    )


def fences(markdown: str) -> list[str]:
    return [token.content for token in _PARSER.parse(markdown) if token.type == "fence"]


def test_the_region_the_page_marks_is_the_content_and_the_rest_is_not():
    html = page("<div class='body' role='main'><h1>Built-in Functions</h1><p>The Python interpreter has a number of functions.</p></div>")
    extraction = extract_markdown(html, PAGE)
    assert extraction.method == "region" and extraction.title == "Built-in Functions"
    assert extraction.markdown == "# Built-in Functions\n\nThe Python interpreter has a number of functions.\n"


def test_without_markers_the_element_around_the_h1_holding_most_text_is_the_region():
    text = " ".join(f"Sentence {i} of the guide explains one more thing about the parser." for i in range(12))
    html = page(f"<div id='s-guide' class='section'><h1>The guide</h1><p>{text}</p><h2>More</h2><p>{text}</p></div>")
    md = extract_markdown(html, PAGE).markdown
    assert md.startswith("# The guide\n") and "## More" in md
    assert "Module number" not in md and "Copyright" not in md and "Home" not in md


def test_relative_links_resolve_against_the_page_and_its_base():
    body = (
        "<div role='main'><h1>Functions</h1><p>See <a href='io.html#x'>io</a>, <a href='#frag'>below</a>, "
        "<a href='../tutorial/index.html'>the tutorial</a>, <a href='/3/glossary.html'>the glossary</a> and "
        "<a href='https://other.example/'>elsewhere</a>.</p><img src='../_images/a.png' alt='A diagram'></div>"
    )
    md = extract_markdown(page(body), PAGE).markdown
    assert "[io](https://docs.example.org/3/library/io.html#x)" in md
    assert "[below](https://docs.example.org/3/library/functions.html#frag)" in md
    assert "[the tutorial](https://docs.example.org/3/tutorial/index.html)" in md
    assert "[the glossary](https://docs.example.org/3/glossary.html)" in md
    assert "[elsewhere](https://other.example/)" in md
    assert "![A diagram](https://docs.example.org/3/_images/a.png)" in md
    based = extract_markdown(page(body, head="<base href='/archive/v2/'>"), PAGE).markdown
    assert "[io](https://docs.example.org/archive/v2/io.html#x)" in based


def test_code_blocks_stay_verbatim_in_fences_also_in_lists_and_definitions():
    code = "def f(x):\n    return x\n\n\n# two blank lines above\n    indented = True"
    body = (
        "<main><h1>Code</h1>"
        f"<div class='highlight-python notranslate'><div class='highlight'><pre><span class='k'>def</span> f(x):\n    return x\n\n\n# two blank lines above\n    indented = True\n</pre></div></div>"  # noqa: E501
        f"<ul><li>In a list:<pre>{code}</pre></li></ul>"
        f"<dl><dt>term</dt><dd><p>In a definition:</p><pre>{code}</pre></dd></dl>"
        "<pre>shown ```with``` fences\n```\ninside</pre>"
        "</main>"
    )
    md = extract_markdown(page(body), PAGE).markdown
    found = fences(md)
    assert found.count(code + "\n") == 3, md
    assert "shown ```with``` fences\n```\ninside\n" in found  # a longer fence around it
    assert "```python\ndef f(x):" in md


def test_inline_code_that_wraps_a_line_never_opens_a_fence():
    body = "<main><h1>Spans</h1><p>Call <code>first(\n  second)\n</code> then <code>```</code> and go on.</p><p>After.</p></main>"
    md = extract_markdown(page(body), PAGE).markdown
    assert fences(md) == [] and "After." in md
    assert markdown_structure(md)["code_blocks"] == 0


def test_no_fence_is_left_open_whatever_the_converter_wrote():
    assert tidy_markdown("text\n\n```python\nprint(1)\n") == "text\n\n```python\nprint(1)\n```\n"
    assert tidy_markdown("```\na\n\n\n\nb\n```\n\n\n\nafter  \n") == "```\na\n\n\n\nb\n```\n\nafter\n"


def test_headings_in_wrapper_divs_keep_their_level_and_drop_their_permalinks():
    body = (
        "<div role='main'><div class='section'><h1>Title<a class='headerlink' href='#title'>¶</a></h1>"
        "<div class='wrapper'><div class='inner'><h2 id='a'>Part A<a class='anchor' href='#a' aria-hidden='true'>#</a></h2>"
        "<p>Words of part A.</p><div><h3>Deeper <a href='#d' class='hash-link'>🔗</a></h3><p>Deep words.</p></div>"
        "<h4><a href='#e'>Linked heading</a></h4></div></div></div></div>"
    )
    extraction = extract_markdown(page(body), PAGE)
    headings = [line for line in extraction.markdown.splitlines() if line.startswith("#")]
    assert headings == ["# Title", "## Part A", "### Deeper", f"#### [Linked heading]({PAGE}#e)"]
    assert extraction.title == "Title" and "¶" not in extraction.markdown


def test_definition_lists_keep_their_terms_and_a_table_inside_a_definition_stays_a_table():
    body = (
        "<main><h1>Options</h1><dl>"
        "<dt>--verbose</dt><dd><p>Say more.</p><table><tr><th>Level</th><th>Output</th></tr><tr><td>1</td><td>info</td></tr></table></dd>"
        "<dt class='sig sig-object py'><em>class</em> <span class='sig-name descname'>Field</span>(<em>**options</em>)"
        "<a class='reference internal' href='_modules/field.html'>[source]</a><a class='headerlink' href='#Field'>¶</a></dt>"
        "<dd><p>A field.</p></dd></dl></main>"
    )
    md = extract_markdown(page(body), PAGE).markdown
    assert "**--verbose**\n\nSay more." in md
    assert "| Level | Output |" in md and "| 1     | info   |" in md
    assert "`class Field(**options)` [[source]](https://docs.example.org/3/library/_modules/field.html)" in md
    assert "- **--verbose**" not in md  # a term is not a bullet


def test_admonitions_are_blockquotes_that_open_with_their_label():
    body = (
        "<main><h1>Notes</h1><div class='admonition warning'><p class='admonition-title'>Warning</p><p>Hot surface.</p></div>"
        "<div class='admonition note'><p class='admonition-title'>See <a href='x.html'>x</a></p><p>Second.</p></div></main>"
    )
    md = extract_markdown(page(body), PAGE).markdown
    assert "> **Warning**\n>\n> Hot surface." in md
    assert "> **See [x](https://docs.example.org/3/library/x.html)**" in md
    assert "Hot surface.\n\n> **See" in md  # two admonitions stay two quotes


def test_a_table_gfm_cannot_hold_stays_an_html_table_with_its_content():
    body = (
        "<main><h1>Tables</h1><table class='docutils'><tr><th colspan='2'>Both</th></tr>"
        "<tr><td><ul><li>one</li><li>two</li></ul></td><td><p>first</p><p>second</p></td></tr></table>"
        "<table><tr><th>A</th><th>B</th></tr><tr><td><p>p1</p><p>p2</p></td><td>x | y</td></tr></table></main>"
    )
    md = extract_markdown(page(body), PAGE).markdown
    assert '<table><tr><th colspan="2">Both</th></tr>' in md and "<li>one</li>" in md and "\n\n<table" not in md.split("<table")[0][-1:]
    assert "| p1<br>p2 | x \\| y |" in md.replace("  ", " ") or "| p1<br>p2 | x \\| y |" in re.sub(r" +", " ", md)
    counts = markdown_structure(md)
    assert counts["tables"] == 2 and counts["list_items"] == 2


def test_text_that_looks_like_a_tag_is_escaped_outside_code():
    body = "<main><h1>Types</h1><ul><li><code>options</code> &lt;Object&gt; Options.</li></ul><p><code>&lt;T&gt;</code> stays code.</p></main>"
    md = extract_markdown(page(body), PAGE).markdown
    assert "- `options` \\<Object> Options." in md and "`<T>` stays code." in md


def test_an_article_page_without_code_goes_to_boilerplate_detection_and_with_code_does_not():
    text = "".join(f"<p>The harbour council met on day {i} to discuss the extension of the old sea wall.</p>" for i in range(8))
    head = "<meta property='og:type' content='article'>"
    assert extract_markdown(page(f"<article><h1>News</h1>{text}</article>", head=head), PAGE).method == "article"
    with_code = extract_markdown(page(f"<article><h1>News</h1>{text}<pre>make build</pre></article>", head=head), PAGE)
    assert with_code.method == "region" and "```\nmake build\n```" in with_code.markdown


def test_a_class_that_names_boilerplate_is_not_enough_when_the_element_says_otherwise():
    words = " ".join(f"Word{i}" for i in range(30))
    body = (
        f"<main><h1>Search</h1><div class='section' id='s-full-text-search'><h2>Full text search</h2><p>Search text. {words}</p></div>"
        f"<div class='article-body pagination-first'><p>{words}</p></div>"
        "<div class='admonition-searching-elsewhere admonition'><p class='admonition-title'>Searching elsewhere</p><p>Kept.</p></div>"
        "<div class='breadcrumbs'><a href='/'>Docs</a> » <a href='/x'>X</a></div></main>"
    )
    md = extract_markdown(page(body), PAGE).markdown
    assert "## Full text search" in md and "Word29" in md and "Kept." in md and "Docs" not in md.replace("# Search", "")


def test_losses_are_described_and_read_back():
    region = {"code_blocks": 3, "tables": 2, "headings": 5, "list_items": 9, "links": 10}
    kept = {"code_blocks": 3, "tables": 1, "headings": 5, "list_items": 9, "links": 8}
    assert describe_losses(region, kept) == "tables 1 of 2, links 2 of 10"
    assert describe_losses(region, region) is None
    described = "code_blocks 3/3, tables 2/1, headings 5/5, list_items 9/9, links 10/8"
    assert parse_structure(described) == {"code_blocks": (3, 3), "tables": (2, 1), "headings": (5, 5), "list_items": (9, 9), "links": (10, 8)}


@pytest.mark.slow
def test_the_docs_corpus_comes_out_whole():
    """benchmarks/docs_fidelity.py's figures on ../shared/corpora/docs-dev, held as a guard."""
    corpus = require_corpus(CORPORA / "docs-dev")
    from collections import Counter

    from benchmarks.docs_fidelity import SITE_ROOT, factflow, load_pages, measure, read_gold, summarise

    counts: Counter = Counter()
    pages = 0
    for site, path, html in load_pages(corpus, None):
        url = SITE_ROOT.format(site=site) + path
        gold = read_gold(html, url, site)
        if gold is not None:
            pages += 1
            counts += measure(gold, factflow(html, url, site), url)
    result = summarise(counts, [], pages)
    assert result["code verbatim"] >= 0.97 and result["tables exact"] >= 0.90 and result["headings in order"] >= 0.97, result
    assert result["list items at depth"] >= 0.95 and result["text recall"] >= 0.97 and result["text precision"] >= 0.97, result
    assert result["boilerplate"] <= 0.01 and result["broken internal links"] <= 0.01 and result["fences open"] == 0, result


@pytest.mark.slow
def test_no_two_distinct_documentation_pages_are_called_duplicates():
    """The most alike distinct pages of docs-dev (Django release notes of two bugfix versions,
    the Rust book's old-edition stubs, three "Redirecting..." pages) are not one document."""
    corpus = require_corpus(CORPORA / "docs-dev")
    from benchmarks.docs_fidelity import SITE_ROOT, load_pages
    from factflow_assets.dataset.duplicates import PageFacts, find_duplicates, shingle_signature, word_count

    facts = []
    for index, (site, path, html) in enumerate(load_pages(corpus, None)):
        url = SITE_ROOT.format(site=site) + path
        markdown = extract_markdown(html, url).markdown
        digest = hashlib.sha256(markdown.encode()).hexdigest()
        facts.append(PageFacts(f"m{index}", url, url, None, digest, (index, ""), word_count(markdown), shingle_signature(markdown)))
    assert find_duplicates(facts) == {}
