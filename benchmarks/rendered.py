"""Rendering pages in Chromium: what web_crawler costs next to web_scraper on the same pages.

    .venv/bin/python benchmarks/rendered.py [--pages 200] [--latency 0.05]

benchmarks/site.py serves the same corpus articles twice: (s) static, fetched by the shipped
stages with web_scraper (benchmarks/pipelines/throughput.yaml), and (r) as script-rendered shells
whose content a script fetches and writes in, fetched and rendered by web_crawler, 4 pages at a
time, waiting for the network to go quiet (benchmarks/pipelines/rendered.yaml). Each is one
`factflow execution start` in a fresh home, all the way to markdown and segments. Prints pages/s,
the scraping stage's span, the words of markdown per page (the content was there in both), and
the peak memory of the process tree, Chromium included, as PSS (a page shared by Chromium's
processes counts once; their summed RSS would count it in each).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
from contextlib import closing
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.site import benchmark_site, load_articles  # noqa: E402
from benchmarks.throughput import factflow, fresh_env, spans_text, stage_spans  # noqa: E402


def markdown_words(home: str) -> float:
    query = "SELECT AVG(json_extract(metadata, '$.words')) FROM factflow_lineage WHERE stage = 'html_to_markdown' AND status = 'completed'"
    with closing(sqlite3.connect(Path(home) / "factflow.db")) as db:
        return db.execute(query).fetchone()[0] or 0.0


def run(pipeline: str, pages: int, latency: float, rendered: bool, articles: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as home, benchmark_site(pages, latency, articles, rendered=rendered) as site:
        wall, answer, peak = factflow(
            fresh_env(home), "execution", "start", pipeline, "--set", f"sitemap_url={site.url('/sitemap_index.xml')}", proportional=True
        )
        if answer["status"] != "completed":
            raise SystemExit(f"{pipeline}: the execution ended {answer['status']}")
        spans = stage_spans(home)
        scraper = "web_crawler" if rendered else "web_scraper"
        label = "(r) rendered shells, web_crawler" if rendered else "(s) static pages, web_scraper"
        print(
            f"{label}: {pages} pages in {wall:.1f} s wall = {pages / wall:.1f} pages/s; {scraper} {pages / spans[scraper]:.1f} pages/s over its {spans[scraper]:.1f} s span"  # noqa: E501
        )
        print(f"    markdown {markdown_words(home):.0f} words a page on average; peak PSS {peak:.0f} MiB")
        print(f"    stages: {spans_text(spans)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds before each answer of the site")
    args = parser.parse_args()
    articles = load_articles()
    run("throughput", args.pages, args.latency, rendered=False, articles=articles)
    run("rendered", args.pages, args.latency, rendered=True, articles=articles)


if __name__ == "__main__":
    main()
