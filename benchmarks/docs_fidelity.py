"""How much of a documentation page's main content its markdown keeps, and at what speed.

    .venv/bin/python benchmarks/docs_fidelity.py [--corpus ../shared/corpora/docs-dev] [--worst 3] [--rounds 1]
                                                 [--site django] [--only factflow]

The corpus is ../shared/corpora/docs-dev: real pages of four documentation sites, each built by
another generator. Each page is converted by
- factflow: the function the `html_to_markdown` adapter runs, with its default config;
- trafilatura fast and default: `trafilatura.extract(html, output_format="markdown", ...)`;
- markdownify on the main element: what plain conversion gives when it is handed the region (the
  ceiling for conversion).

Every measure is read against the page's own main content: the element this benchmark names for
each site (GOLD_REGION; a measuring stick written per site, unlike the extractor, which knows no
site). Nothing here uses factflow's own parsing: markdown is read with markdown-it (CommonMark and
GFM tables), HTML with lxml.
- code verbatim: `<pre>` blocks whose exact text (trailing spaces aside) is the content of a
  fenced code block; code present: whose text, whitespace collapsed, is in the markdown at all;
- tables exact: tables whose every row parses as a GFM table row with the same cell texts; table
  cells: the share of the cells found in a GFM table of the markdown;
- headings in order: the longest common subsequence of (level, text) of the h1-h4 in the region
  and in the markdown, over the region's;
- list items at depth: `<li>` whose (nesting depth, first words) is a list item of the markdown;
- text recall / precision: word 4-gram multisets of the region's text and the markdown's text;
  boilerplate: the share of the markdown's 4-grams found on the page outside the region only;
- broken internal links: links of the markdown into the site whose target is not where any link of
  the page points (resolved against the page's URL);
- fences open: pages whose markdown ends inside a fence;
- median and p95 ms a page (one process, one page at a time, the fastest of `--rounds`).
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlsplit

import lxml.html
import trafilatura
from markdown_it import MarkdownIt

from benchmarks.corpora import CORPORA
from factflow_assets.adapters.html_to_markdown import HtmlToMarkdownConfig
from factflow_assets.extraction.documents import decode_html
from factflow_assets.extraction.markdown_extraction import extract_markdown

DEFAULT_CORPUS = CORPORA / "docs-dev"
#: Each site's main content, as its generator writes it: the measuring stick, not a rule of factflow.
GOLD_REGION = {
    "django": "//div[@id='yui-main']//div[contains(concat(' ', @class, ' '), ' yui-g ')]",
    "rust-book": "//main",
    "nodejs": "//*[@id='apicontent']",
    "mkdocs": "//*[@role='main']",
}
#: Where each site is served from in this benchmark (the pages keep their paths).
SITE_ROOT = "https://{site}.docs.test/"
_WORD = re.compile(r"\w+")
_SPACE = re.compile(r"\s+")
_IMAGE_OR_LINK_TARGET = re.compile(r"(!?\[(?:\\.|[^\]\\])*\])\([^)]*\)")
_MARKDOWN_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|<>~])")
_FENCE_LINE = re.compile(r"^\s*(?:>\s*)*(`{3,}|~{3,})")
_BOILERPLATE_XPATH = "//script | //style | //noscript | //template"
_PERMALINKS = {"¶", "#", "§", "🔗", ""}


@dataclass
class PageMeasures:
    site: str
    page: str
    milliseconds: float
    counts: Counter = field(default_factory=Counter)  # numerators and denominators by measure


def load_pages(corpus: Path, only_site: str | None) -> list[tuple[str, str, str]]:
    """(site, path, html) for every page of the corpus."""
    manifest = json.loads((corpus / "manifest.json").read_text())
    pages = []
    for site in manifest:
        if only_site and site != only_site:
            continue
        for path in manifest[site]["pages"]:
            raw = gzip.decompress((corpus / site / "html" / f"{path}.gz").read_bytes())
            pages.append((site, path, decode_html(raw, "text/html")))
    return pages


# --- the extractors ---------------------------------------------------------------------------


def factflow(html: str, url: str, site: str) -> str:
    config = HtmlToMarkdownConfig()
    return extract_markdown(html, url, config.preserve_links, config.preserve_images).markdown


def trafilatura_fast(html: str, url: str, site: str) -> str:
    return trafilatura.extract(html, url=url, output_format="markdown", fast=True, include_links=True, include_tables=True, include_formatting=True) or ""


def trafilatura_default(html: str, url: str, site: str) -> str:
    return trafilatura.extract(html, url=url, output_format="markdown", include_links=True, include_tables=True, include_formatting=True) or ""


def markdownify_main(html: str, url: str, site: str) -> str:
    import markdownify

    document = lxml.html.document_fromstring(html)
    document.make_links_absolute(url, resolve_base_href=True)
    regions = document.xpath(GOLD_REGION[site])
    if not regions:
        return ""
    return markdownify.markdownify(lxml.html.tostring(regions[0], encoding="unicode"), heading_style="ATX", code_language_callback=None)


EXTRACTORS: dict[str, Callable[[str, str, str], str]] = {
    "factflow": factflow,
    "trafilatura fast": trafilatura_fast,
    "trafilatura default": trafilatura_default,
    "markdownify on the main element": markdownify_main,
}


# --- reading the page -------------------------------------------------------------------------


@dataclass
class Gold:
    code: list[str]
    tables: list[list[list[str]]]
    headings: list[tuple[int, str]]
    list_items: list[tuple[int, str]]
    text: str
    outside_text: str
    link_targets: set[str]


def read_gold(html: str, url: str, site: str) -> Gold | None:
    document = lxml.html.document_fromstring(html)
    for element in document.xpath(_BOILERPLATE_XPATH):
        element.drop_tree()
    regions = document.xpath(GOLD_REGION[site])
    if not regions:
        return None
    region = regions[0]
    link_targets = {urljoin(url, a.get("href").strip()) for a in document.xpath("//a[@href]")}
    for anchor in region.xpath(".//a[@href]"):
        if anchor.text_content().strip() in _PERMALINKS and "#" in anchor.get("href"):
            anchor.drop_tree()  # a heading's permalink symbol is not content
    code = [_code_text(pre.text_content()) for pre in region.xpath(".//pre") if not pre.xpath("ancestor::pre")]
    tables = [_html_table(table) for table in region.xpath(".//table") if not table.xpath(".//pre") and not table.xpath("ancestor::table")]
    headings = [(int(h.tag[1]), _key(h.text_content())) for h in region.xpath(".//h1 | .//h2 | .//h3 | .//h4") if _key(h.text_content())]
    items = []
    for item in region.xpath(".//li"):
        depth = len(item.xpath("ancestor::ul | ancestor::ol")) - len(region.xpath("ancestor::ul | ancestor::ol"))
        own = _own_text(item)
        if _key(own):
            items.append((depth, _key(own, words=6)))
    text = region.text_content()
    region_parent = region.getparent()
    region_parent.remove(region)
    outside = document.text_content()
    return Gold(code, [t for t in tables if t], headings, items, text, outside, link_targets)


def _own_text(item) -> str:
    """An item's text without its nested lists and code blocks."""
    parts = [item.text or ""]
    for child in item:
        if child.tag not in ("ul", "ol", "pre", "div", "table", "dl"):
            parts.append(child.text_content())
        elif child.tag == "div" and not child.xpath(".//ul | .//ol | .//pre | .//table"):
            parts.append(child.text_content())
        parts.append(child.tail or "")
    return " ".join(parts)


def _code_text(text: str) -> str:
    lines = [line.rstrip() for line in text.expandtabs(4).split("\n")]
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines)


def _html_table(table) -> list[list[str]]:
    return [[_cell(cell.text_content()) for cell in row.xpath("./th | ./td")] for row in table.xpath(".//tr") if row.xpath("./th | ./td")]


def _cell(text: str) -> str:
    return " ".join(_WORD.findall(text)).lower()


def _key(text: str, words: int = 0) -> str:
    found = _WORD.findall(text.lower())
    return " ".join(found[:words] if words else found)


# --- reading the markdown ---------------------------------------------------------------------

_PARSER = MarkdownIt("commonmark").enable(["table", "strikethrough"])


@dataclass
class Read:
    fences: list[str]
    tables: list[list[list[str]]]
    headings: list[tuple[int, str]]
    list_items: list[tuple[int, str]]
    text: str
    links: list[str]
    open_fence: bool


def read_markdown(markdown: str) -> Read:
    tokens = _PARSER.parse(markdown)
    fences, tables, headings, items, links, texts = [], [], [], [], [], []
    depth = 0
    row: list[str] | None = None
    table: list[list[str]] | None = None
    pending_heading: int | None = None
    pending_item: int | None = None
    for token in tokens:
        if token.type == "fence":
            fences.append(_code_text(token.content))
            texts.append(token.content)
        elif token.type == "code_block":
            texts.append(token.content)
        elif token.type in ("bullet_list_open", "ordered_list_open"):
            depth += 1
        elif token.type in ("bullet_list_close", "ordered_list_close"):
            depth -= 1
        elif token.type == "list_item_open":
            pending_item = depth
        elif token.type == "heading_open":
            pending_heading = int(token.tag[1])
        elif token.type == "table_open":
            table = []
        elif token.type == "table_close":
            tables.append(table)
            table = None
        elif token.type == "tr_open":
            row = []
        elif token.type == "tr_close" and table is not None:
            table.append(row)
            row = None
        elif token.type == "html_block":
            texts.append(lxml.html.fragment_fromstring(token.content, create_parent="div").text_content() if token.content.strip() else "")
        elif token.type == "inline":
            plain = _inline_text(token, links)
            texts.append(plain)
            if row is not None:
                row.append(_cell(plain))
            if pending_heading is not None:
                headings.append((pending_heading, _key(plain)))
                pending_heading = None
            if pending_item is not None:
                items.append((pending_item, _key(plain, words=6)))
                pending_item = None
    return Read(fences, tables, headings, items, "\n".join(texts), links, _ends_in_fence(markdown))


def _inline_text(token, links: list[str]) -> str:
    parts = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "image":
            parts.append(child.content)
        elif child.type == "link_open":
            links.append(child.attrs.get("href", ""))
        elif child.type == "html_inline":
            continue
    return "".join(parts)


def _ends_in_fence(markdown: str) -> bool:
    fence = None
    for line in markdown.split("\n"):
        match = _FENCE_LINE.match(line)
        if not match:
            continue
        marker = match.group(1)
        if fence is None:
            fence = marker
        elif marker[0] == fence[0] and len(marker) >= len(fence) and not line.strip().lstrip(">").strip()[len(marker) :].strip():
            fence = None
    return fence is not None


# --- measuring --------------------------------------------------------------------------------


def measure(gold: Gold, markdown: str, url: str) -> Counter:
    read = read_markdown(markdown)
    counts: Counter = Counter()
    fences = Counter(read.fences)
    flat = _SPACE.sub(" ", markdown)
    unescaped = _SPACE.sub(" ", _MARKDOWN_ESCAPE.sub(r"\1", markdown))
    for code in gold.code:
        counts["code", "of"] += 1
        if fences[code] > 0:
            fences[code] -= 1
            counts["code", "verbatim"] += 1
        collapsed = _SPACE.sub(" ", code).strip()
        if collapsed in flat or collapsed in unescaped:
            counts["code", "present"] += 1
    md_rows = Counter(tuple(row) for table in read.tables for row in table)
    md_cells = Counter(cell for table in read.tables for row in table for cell in row)
    for table in gold.tables:
        counts["tables", "of"] += 1
        if all(md_rows[tuple(row)] > 0 for row in table):
            counts["tables", "exact"] += 1
        for row in table:
            for cell in row:
                counts["cells", "of"] += 1
                if md_cells[cell] > 0:
                    md_cells[cell] -= 1
                    counts["cells", "found"] += 1
    counts["headings", "of"] += len(gold.headings)
    counts["headings", "in order"] += _lcs(gold.headings, [h for h in read.headings if h[0] <= 4])
    md_items = Counter(read.list_items)
    for item in gold.list_items:
        counts["items", "of"] += 1
        if md_items[item] > 0:
            md_items[item] -= 1
            counts["items", "at depth"] += 1
    ours = _shingles(read.text)
    theirs = _shingles(gold.text)
    outside = _shingles(gold.outside_text)
    shared = sum((ours & theirs).values())
    counts["text", "shared"] += shared
    counts["text", "ours"] += sum(ours.values())
    counts["text", "theirs"] += sum(theirs.values())
    counts["text", "boilerplate"] += sum(((ours - theirs) & outside).values())
    host = urlsplit(url).netloc
    for link in read.links:
        if urlsplit(link).netloc != host:
            continue
        counts["links", "internal"] += 1
        if link not in gold.link_targets and urldefrag(link)[0] + "#" + urldefrag(link)[1] not in gold.link_targets:
            counts["links", "broken"] += 1
    counts["fences", "open"] += int(read.open_fence)
    return counts


def _shingles(text: str) -> Counter:
    tokens = _WORD.findall(_IMAGE_OR_LINK_TARGET.sub(r"\1", text).lower())
    return Counter(tuple(tokens[i : i + 4]) for i in range(len(tokens) - 3))


def _lcs(a: list, b: list) -> int:
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def summarise(counts: Counter, times: list[float], pages: int) -> dict[str, float]:
    def share(numerator: tuple, denominator: tuple) -> float:
        return counts[numerator] / counts[denominator] if counts[denominator] else 1.0

    ordered = sorted(times)
    return {
        "code verbatim": share(("code", "verbatim"), ("code", "of")),
        "code present": share(("code", "present"), ("code", "of")),
        "tables exact": share(("tables", "exact"), ("tables", "of")),
        "table cells": share(("cells", "found"), ("cells", "of")),
        "headings in order": share(("headings", "in order"), ("headings", "of")),
        "list items at depth": share(("items", "at depth"), ("items", "of")),
        "text recall": share(("text", "shared"), ("text", "theirs")),
        "text precision": share(("text", "shared"), ("text", "ours")),
        "boilerplate": share(("text", "boilerplate"), ("text", "ours")),
        "broken internal links": share(("links", "broken"), ("links", "internal")),
        "fences open": counts["fences", "open"] / pages if pages else 0.0,
        "median ms": statistics.median(ordered) if ordered else 0.0,
        "p95 ms": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else 0.0,
    }


TARGETS = {
    "code verbatim": ">= 0.97",
    "tables exact": ">= 0.90",
    "headings in order": ">= 0.97",
    "list items at depth": ">= 0.95",
    "text recall": ">= 0.97",
    "text precision": ">= 0.97",
    "boilerplate": "<= 0.01",
    "broken internal links": "<= 0.01",
    "fences open": "0",
    "median ms": "<= trafilatura fast",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--site", help="only this site")
    parser.add_argument("--only", action="append", help="only these extractors (repeatable)")
    parser.add_argument("--rounds", type=int, default=1, help="time each page this many times, keep the fastest")
    parser.add_argument("--worst", type=int, default=3, help="list the pages where factflow keeps least, by measure")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    pages = load_pages(args.corpus, args.site)
    extractors = {name: extract for name, extract in EXTRACTORS.items() if not args.only or name in args.only}
    for extract in extractors.values():  # imports and first-call caches are not per-page costs
        site, path, html = pages[0]
        extract(html, SITE_ROOT.format(site=site) + path, site)
    by_site: dict[str, dict[str, list[PageMeasures]]] = defaultdict(lambda: defaultdict(list))
    for site, path, html in pages:
        url = SITE_ROOT.format(site=site) + path
        gold = read_gold(html, url, site)
        if gold is None:
            continue
        for name, extract in extractors.items():
            best = float("inf")
            for _ in range(args.rounds):
                started = time.perf_counter()
                markdown = extract(html, url, site)
                best = min(best, (time.perf_counter() - started) * 1000)
            by_site[name][site].append(PageMeasures(site, path, best, measure(gold, markdown, url)))
    results: dict[str, dict[str, dict[str, float]]] = {}
    for name, sites in by_site.items():
        results[name] = {}
        every: list[PageMeasures] = []
        for site, measured in sites.items():
            every.extend(measured)
            results[name][site] = summarise(sum((m.counts for m in measured), Counter()), [m.milliseconds for m in measured], len(measured))
        results[name]["all"] = summarise(sum((m.counts for m in every), Counter()), [m.milliseconds for m in every], len(every))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    _print(results, extractors, args.corpus, len(pages))
    if args.worst and "factflow" in by_site:
        _print_worst(by_site["factflow"], args.worst)


def _print(results: dict, extractors: dict, corpus: Path, pages: int) -> None:
    print(f"{pages} pages of {corpus}")
    measures = list(next(iter(next(iter(results.values())).values())))
    sites = list(next(iter(results.values())))
    for site in sites:
        print(f"\n== {site}")
        print(f"{'measure':<24}" + "".join(f"{name[:20]:>22}" for name in extractors) + f"{'target':>14}")
        for measure_name in measures:
            row = f"{measure_name:<24}"
            for name in extractors:
                value = results[name][site][measure_name]
                row += f"{value:>22.1f}" if measure_name.endswith("ms") else f"{value:>22.3f}"
            print(row + (f"{TARGETS.get(measure_name, ''):>14}" if site == "all" else ""))


def _print_worst(sites: dict[str, list[PageMeasures]], worst: int) -> None:
    pairs = {
        "code verbatim": (("code", "verbatim"), ("code", "of")),
        "tables exact": (("tables", "exact"), ("tables", "of")),
        "headings in order": (("headings", "in order"), ("headings", "of")),
        "list items at depth": (("items", "at depth"), ("items", "of")),
        "text recall": (("text", "shared"), ("text", "theirs")),
        "text precision": (("text", "shared"), ("text", "ours")),
    }
    every = [m for measured in sites.values() for m in measured]
    print("\npages where factflow keeps least:")
    for label, (numerator, denominator) in pairs.items():
        scored = sorted(((m.counts[numerator] / m.counts[denominator], m) for m in every if m.counts[denominator]), key=lambda pair: pair[0])
        listed = ", ".join(f"{m.site}/{m.page} {value:.2f}" for value, m in scored[:worst] if value < 1)
        print(f"  {label}: {listed or 'none below 1.0'}")
    broken = sorted(every, key=lambda m: -m.counts["links", "broken"])[:worst]
    pages = ", ".join(f"{m.site}/{m.page} {m.counts['links', 'broken']}" for m in broken if m.counts["links", "broken"])
    print("  broken internal links: " + (pages or "none"))


if __name__ == "__main__":
    main()
