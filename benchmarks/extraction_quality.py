"""Extraction quality of `html_to_markdown` against gold article text, and its speed.

    .venv/bin/python benchmarks/extraction_quality.py [--corpus ../shared/corpora/aeb-dev] [--worst 10]

The corpus is ../shared/corpora/aeb-dev: gzipped HTML pages and `ground-truth.json` with each
page's gold article text (`articleBody`). Each page is decoded as `web_content_storage` decodes it
and converted by the same function the adapter runs in its worker processes, with the adapter's
default config (links and images kept). Its markdown is scored against the gold text by word
4-gram overlap: tokens are `\\w+` runs, shingles of 4 consecutive tokens are counted as multisets,
link and image URLs are stripped first; precision = shared / extracted and recall = shared / gold
per page, averaged over pages, and F1 from the two averages. Prints P, R, F1 and the median
milliseconds per page (one process, one page at a time), then the worst pages.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from benchmarks.corpora import AEB_DEV
from factflow_assets.adapters.documents import decode_html
from factflow_assets.adapters.html_to_markdown import HtmlToMarkdownConfig
from factflow_assets.adapters.markdown_extraction import extract_markdown

DEFAULT_CORPUS = AEB_DEV
_WORD = re.compile(r"\w+")
_IMAGE_TARGET = re.compile(r"(!\[(?:\\.|[^\]\\])*\])\([^)]*\)")
_LINK_TARGET = re.compile(r"(\[(?:\\.|[^\]\\])*\])\([^)]*\)")


@dataclass(frozen=True)
class PageScore:
    page: str
    precision: float
    recall: float
    milliseconds: float


def strip_targets(markdown: str) -> str:
    """The markdown with every link and image URL removed (their text stays)."""
    return _LINK_TARGET.sub(r"\1", _IMAGE_TARGET.sub(r"\1", markdown))


def shingles(text: str) -> Counter:
    tokens = _WORD.findall(text)
    return Counter(tuple(tokens[i : i + 4]) for i in range(len(tokens) - 3))


def overlap(extracted: str, gold: str) -> tuple[float, float]:
    """(precision, recall) of `extracted` against `gold` by word 4-gram multisets."""
    ours, theirs = shingles(strip_targets(extracted)), shingles(gold)
    shared = sum((ours & theirs).values())
    precision = shared / sum(ours.values()) if ours else 0.0
    recall = shared / sum(theirs.values()) if theirs else 0.0
    return precision, recall


def load_corpus(corpus: Path) -> tuple[dict[str, bytes], dict[str, str]]:
    gold = {page: entry["articleBody"] for page, entry in json.loads((corpus / "ground-truth.json").read_text()).items()}
    pages = {path.name.split(".")[0]: gzip.decompress(path.read_bytes()) for path in sorted((corpus / "html").glob("*.html.gz"))}
    return pages, gold


def score_pages(pages: dict[str, bytes], gold: dict[str, str]) -> list[PageScore]:
    config = HtmlToMarkdownConfig()
    scores = []
    for page, raw in pages.items():
        html = decode_html(raw, "text/html")
        started = time.perf_counter()
        markdown = extract_markdown(html, preserve_links=config.preserve_links, preserve_images=config.preserve_images).markdown
        milliseconds = (time.perf_counter() - started) * 1000
        scores.append(PageScore(page, *overlap(markdown, gold[page]), milliseconds))
    return scores


def summary(scores: list[PageScore]) -> dict[str, float]:
    precision = statistics.mean(s.precision for s in scores)
    recall = statistics.mean(s.recall for s in scores)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "pages": len(scores),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "median_ms_per_page": round(statistics.median(s.milliseconds for s in scores), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--worst", type=int, default=10, help="list this many pages with the lowest F1")
    args = parser.parse_args()
    pages, gold = load_corpus(args.corpus)
    extract_markdown(next(iter(pages.values())))  # imports and first-call caches are not per-page costs
    scores = score_pages(pages, gold)
    result = summary(scores)
    print(f"pages {result['pages']}  P {result['precision']:.4f}  R {result['recall']:.4f}  F1 {result['f1']:.4f}  median {result['median_ms_per_page']:.1f} ms/page")
    if args.worst:
        print("worst pages (P, R):")
        for s in sorted(scores, key=lambda s: 2 * s.precision * s.recall / (s.precision + s.recall or 1))[: args.worst]:
            print(f"  {s.page[:16]}  {s.precision:.2f}  {s.recall:.2f}")


if __name__ == "__main__":
    main()
