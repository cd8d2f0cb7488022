"""Extraction quality and speed of `html_to_markdown` beside trafilatura's fast markdown mode.

    .venv/bin/python benchmarks/extraction_quality.py [--corpus ../shared/corpora/aeb-dev] [--worst 5] [--rounds 3]

The corpus is ../shared/corpora/aeb-dev: gzipped HTML pages and `ground-truth.json` with each
page's gold article text (`articleBody`). Each page is decoded as `web_content_storage` decodes it
and converted by (f) the function the adapter runs in its worker processes, with the adapter's
default config (links and images kept), and by (t) what a user writes by hand instead:
`trafilatura.extract(html, output_format="markdown", fast=True, include_links=True)`.

Each markdown is scored against the gold text by word 4-gram overlap: tokens are `\\w+` runs,
shingles of 4 consecutive tokens are counted as multisets, link and image URLs are stripped first;
precision = shared / extracted and recall = shared / gold per page, averaged over pages, and F1
from the two averages. Time is per page, one process, one page at a time; the two extractors take
turns on each page (which goes first alternates), so a busy moment on the machine hits both, and
each page's time is its fastest of `--rounds`. Prints P, R, F1, median and p95 ms a page for
both, the ratio of the medians, and the pages where each loses most.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import trafilatura

from benchmarks.corpora import AEB_DEV
from factflow_assets.adapters.html_to_markdown import HtmlToMarkdownConfig
from factflow_assets.extraction.documents import decode_html
from factflow_assets.extraction.markdown_extraction import extract_markdown

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

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0


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


def factflow_extractor() -> Callable[[str], str]:
    config = HtmlToMarkdownConfig()
    return lambda html: extract_markdown(html, preserve_links=config.preserve_links, preserve_images=config.preserve_images).markdown


def trafilatura_fast(html: str) -> str:
    return trafilatura.extract(html, output_format="markdown", fast=True, include_links=True) or ""


def score_side_by_side(pages: dict[str, bytes], gold: dict[str, str], extractors: dict[str, Callable[[str], str]], rounds: int) -> dict[str, list[PageScore]]:
    """Every extractor's score on every page; each page's time is its fastest of `rounds`."""
    scores: dict[str, list[PageScore]] = {name: [] for name in extractors}
    names = list(extractors)
    for index, (page, raw) in enumerate(pages.items()):
        html = decode_html(raw, "text/html")
        best = dict.fromkeys(names, float("inf"))
        markdown: dict[str, str] = {}
        for round_ in range(rounds):
            order = names if (index + round_) % 2 == 0 else names[::-1]
            for name in order:
                started = time.perf_counter()
                markdown[name] = extractors[name](html)
                best[name] = min(best[name], (time.perf_counter() - started) * 1000)
        for name in names:
            scores[name].append(PageScore(page, *overlap(markdown[name], gold[page]), best[name]))
    return scores


def summary(scores: list[PageScore]) -> dict[str, float]:
    precision = statistics.mean(s.precision for s in scores)
    recall = statistics.mean(s.recall for s in scores)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    times = sorted(s.milliseconds for s in scores)
    return {
        "pages": len(scores),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "median_ms_per_page": round(statistics.median(times), 2),
        "p95_ms_per_page": round(times[min(len(times) - 1, int(0.95 * len(times)))], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--worst", type=int, default=5, help="list this many pages where each extractor loses most")
    parser.add_argument("--rounds", type=int, default=3, help="time each page this many times, keep the fastest")
    args = parser.parse_args()
    pages, gold = load_corpus(args.corpus)
    extractors = {"factflow html_to_markdown": factflow_extractor(), "trafilatura fast": trafilatura_fast}
    for extract in extractors.values():  # imports and first-call caches are not per-page costs
        extract(decode_html(next(iter(pages.values())), "text/html"))
    scores = score_side_by_side(pages, gold, extractors, args.rounds)
    results = {name: summary(page_scores) for name, page_scores in scores.items()}
    print(f"{len(pages)} pages of {args.corpus}")
    print(f"{'extractor':<28}{'P':>8}{'R':>8}{'F1':>8}{'median ms':>11}{'p95 ms':>9}")
    for name, result in results.items():
        print(f"{name:<28}{result['precision']:>8.4f}{result['recall']:>8.4f}{result['f1']:>8.4f}{result['median_ms_per_page']:>11.2f}{result['p95_ms_per_page']:>9.2f}")
    ours, theirs = (results[name] for name in extractors)
    print(f"median time, factflow / trafilatura fast: {ours['median_ms_per_page'] / theirs['median_ms_per_page']:.2f} (target <= 1.10); F1 target >= 0.955")
    if args.worst:
        names = list(extractors)
        for name, other in ((names[0], names[1]), (names[1], names[0])):
            by_page = {s.page: s for s in scores[other]}
            print(f"pages where {name} loses most to {other} (F1 {name} / {other}; P, R):")
            for s in sorted(scores[name], key=lambda s: s.f1 - by_page[s.page].f1)[: args.worst]:
                o = by_page[s.page]
                print(f"  {s.page[:16]}  {s.f1:.2f} / {o.f1:.2f}   ({s.precision:.2f}, {s.recall:.2f}) / ({o.precision:.2f}, {o.recall:.2f})")


if __name__ == "__main__":
    main()
